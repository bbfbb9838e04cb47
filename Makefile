# make render ENV=dev | make test | make lint ENV=dev | make deploy ENV=dev | make destroy ENV=dev
ENV ?= dev
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# render needs only the base install (troposphere, awacs, pydantic, PyYAML, boto3);
# test adds the [test] extra (cfn-lint, pytest, moto, ...) on top.
BASE_STAMP := $(VENV)/.installed-base
# checkov pins an old boto3: it gets its own tool environment, never the deployer's.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION ?= 3.2.533

PORT ?= 5000

.PHONY: venv wheel checkov emulator render lint test plan deploy status destroy schema bench mutate mutate-deploy mutate-boot clean

$(BASE_STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# the wheel pip/pipx users install (environments, defaults and schema inside); setuptools packs
# whatever an earlier build left in build/lib (pypa/setuptools#1871), hence the clean start
wheel: $(STAMP)
	rm -rf build/lib
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)

render: $(BASE_STAMP)
	$(BIN)/python build.py --env $(ENV)

lint: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/k3s-infra lint --env $(ENV)

# One worker per core (pytest-xdist); a test file stays in one worker, in order (its tests may
# build on each other), each worker with its own moto server.
test: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

plan: $(BASE_STAMP)
	$(BIN)/k3s-infra plan --env $(ENV)

deploy: $(BASE_STAMP)
	$(BIN)/k3s-infra deploy --env $(ENV)

status: $(BASE_STAMP)
	$(BIN)/k3s-infra status --env $(ENV)

destroy: $(BASE_STAMP)
	$(BIN)/k3s-infra destroy --env $(ENV)

schema: $(STAMP)
	$(BIN)/k3s-infra schema --out environments/schema.json

# the emulator in the foreground (Ctrl-C stops it): k3s-infra emulator serve (README: Try it without AWS)
emulator: $(STAMP)
	$(BIN)/k3s-infra emulator serve --port $(PORT)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Mutation testing (docs/testing.md), not part of make test or CI: long, run by hand.
# make mutate MUTANTS='k3s_infra.model.ports*'  limits the run to one module's mutants.
# boot.sh (shell, out of mutmut's reach): tests/mutation/test_boot_mutations.py, after mutmut.
MUTANTS ?=
mutate: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,mutate]'
	$(BIN)/mutmut run $(if $(MUTANTS),"$(MUTANTS)")
	$(BIN)/mutmut results
	$(BIN)/python tests/mutation/mutation_recheck.py $(if $(MUTANTS),"$(MUTANTS)")
	K3S_INFRA_BOOT_MUTATIONS=1 $(BIN)/python -m pytest -q tests/mutation/test_boot_mutations.py

# The deploy library (tests/mutation/py_mutate.py: trace which tests run which lines, then one
# pytest per mutant, one at a time; hours) and the node script's mechanical mutants
# (tests/mutation/sh_mutate.py, the boot sandbox per mutant). MODULES='groups.py quorum.py' or
# PART=boot_lib.sh limit a run; results and the tables of docs/testing.md in build/mutation/.
MODULES ?=
PART ?= boot.sh
mutate-deploy: $(STAMP)
	$(BIN)/python tests/mutation/py_mutate.py trace
	$(BIN)/python tests/mutation/py_mutate.py run $(MODULES)
	$(BIN)/python tests/mutation/py_mutate.py report

mutate-boot: $(STAMP)
	$(BIN)/python tests/mutation/sh_mutate.py $(PART)
	$(BIN)/python tests/mutation/sh_mutate.py --report $(PART)

clean:
	rm -rf build dist mutants $(VENV) $(CHECKOV_VENV) *.egg-info
