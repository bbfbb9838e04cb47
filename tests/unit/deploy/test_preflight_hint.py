"""Pre-flight's refusal (deploy/preflight.py gate): its problems, then what was not done and
the way past on a line of its own, not counted as a problem ("2 problems" for one was issue 26)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from k3s_infra.config import ConfigError, load_environment
from k3s_infra.deploy import preflight

DEV = load_environment("dev")


@pytest.mark.parametrize("endpoint, way_past", [
    (None, "--skip-preflight skips it"),
    ("http://127.0.0.1:5000", "--skip-preflight skips these checks"),
])
def test_one_problem_reads_as_one(monkeypatch, endpoint, way_past):
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(preflight, "pinned_images", lambda aws, update_image: {})
    monkeypatch.setattr(preflight, "check", lambda env, aws, image_ids, offline: [
        ("network.vpc_id", "vpc-0abc does not exist")])
    with pytest.raises(ConfigError) as caught:
        preflight.gate(SimpleNamespace(env=DEV), source="environments/dev.yaml")
    first, second = str(caught.value).splitlines()
    assert first == "environments/dev.yaml: network.vpc_id: vpc-0abc does not exist"
    assert second.startswith("nothing was changed (pre-flight") and way_past in second
    assert caught.value.problems == [("network.vpc_id", "vpc-0abc does not exist")]
