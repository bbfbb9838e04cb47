# make render ENV=dev | make test | make lint ENV=dev | make deploy ENV=dev | make destroy ENV=dev
ENV ?= dev
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv render lint test plan deploy status destroy schema bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

render: $(STAMP)
	$(BIN)/python build.py --env $(ENV)

lint: $(STAMP)
	$(BIN)/k3s-infra lint --env $(ENV)

test: $(STAMP)
	$(BIN)/python -m pytest

plan: $(STAMP)
	$(BIN)/k3s-infra plan --env $(ENV)

deploy: $(STAMP)
	$(BIN)/k3s-infra deploy --env $(ENV)

status: $(STAMP)
	$(BIN)/k3s-infra status --env $(ENV)

destroy: $(STAMP)
	$(BIN)/k3s-infra destroy --env $(ENV)

schema: $(STAMP)
	$(BIN)/k3s-infra schema --out environments/schema.json

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf build $(VENV) *.egg-info
