"""No template injection (hostile input, item 4): strings from an environment file (labels,
taints, add-on values, schedules) never become deploy-time substitutions. Forged placeholders
and ``${...}`` reach the nodes literally, or are refused where the field cannot hold them.
"""

from __future__ import annotations

import pytest

from tests.support.oracle_helpers import bundle_files, user_data_sub as _user_data
from tests.support.published import addons_manifest, publish


FORGED = ("x__cfn_TokenSecret__x", "${AWS::AccountId}", "${TokenSecret}", "__cfn_AgentTokenSecret__")


def test_user_strings_never_become_deploy_time_substitutions(env_document):
    import json

    import yaml

    from k3s_infra import bootstrap
    from k3s_infra.config import validate
    from k3s_infra.render import render

    document = env_document("dev")
    pool = document["agent_pools"][0]
    pool["labels"] = {"example.com/forged": "x__cfn_AgentTokenSecret__x"}
    pool["taints"] = ["example.com/forged=x__cfn_AgentTokenSecret__x:NoSchedule"]
    document["addons"] = {"grafana": {"enabled": True, "values": {
        "forged": list(FORGED), "env": {"GF_FORGED": "__cfn_KubeconfigSecret__"}}}}
    rendering = render(validate(document, "dev.yaml"))
    publish(rendering.env)  # the add-ons' object a deploy uploads
    templates = {s.stack_id: json.loads(json.dumps(yaml.safe_load(s.body))) for s in rendering.stacks}
    agent_stack = next(s for s in templates if s.startswith("AgentPool"))
    text, variables = _user_data(templates[agent_stack])
    assert "AgentTokenSecret" in variables  # the name a forged placeholder would have hit
    expanded = bootstrap.resolve(text, {name: f"<{name}>" for name in variables})
    files = {f["path"]: bootstrap.unpacked(f) for f in yaml.safe_load(expanded)["write_files"]}
    config = yaml.safe_load(files[bootstrap.K3S_CONFIG])
    assert config["node-label"] == ["example.com/forged=x__cfn_AgentTokenSecret__x"]
    assert config["node-taint"] == ["example.com/forged=x__cfn_AgentTokenSecret__x:NoSchedule"]
    # The add-on values reach the servers' manifests literally, ${...} included: the bundle is
    # a plain string value, no Fn::Sub (k3s_infra/bootstrap/bundle.py).
    parameters = [r["Properties"] for r in templates["ServerInit"]["Resources"].values()
                  if r["Type"] == "AWS::SSM::Parameter"]
    assert parameters and all(isinstance(parameter["Value"], str) for parameter in parameters)
    charts = addons_manifest(templates["ServerInit"])
    grafana = next(d for d in yaml.safe_load_all(charts) if d["metadata"]["name"] == "grafana")
    values = yaml.safe_load(grafana["spec"]["valuesContent"])
    assert values["forged"] == list(FORGED)
    assert values["env"]["GF_FORGED"] == "__cfn_KubeconfigSecret__"


def test_a_forged_placeholder_in_a_schedule_is_refused_not_substituted(env_document):
    from k3s_infra.config import ConfigError, validate

    document = env_document("dev")
    document.setdefault("k3s", {})["etcd_snapshots"] = {"schedule": "__cfn_TokenSecret__ * * * *"}
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    assert caught.value.problems[0][0] == "k3s.etcd_snapshots.schedule"
