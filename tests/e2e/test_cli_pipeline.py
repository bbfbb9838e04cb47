"""The CI pipeline of README "CI" against the session's moto server, through the real CLI:
plan --detailed-exitcode (2, then 0 once deployed), status --output json, a read-only
diff (no write call at all), kubeconfig --merge, init --from-account.
The tests run in file order and each builds on the previous one."""

from __future__ import annotations

import json
import stat

import pytest
import yaml

from k3s_infra.deploy.aws import Aws
from tests.support.emulated_account import FIRST_DEPLOY_STATUS

STACK = "k3s-cli-ops"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 3,
        "root_volume_gb": 30}
READ_ONLY = ("Describe", "Get", "List")


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("ops.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL]))


@pytest.fixture(scope="module")
def changed_config(write_env):
    return str(write_env("ops-changed.yaml", deploy={"stack_name": STACK},
                         agent_pools=[{**POOL, "max_size": 5}]))


@pytest.fixture
def calls(monkeypatch):
    """Every AWS operation the product calls, recorded by a botocore before-call hook."""
    made: list[str] = []
    original = Aws.client

    def client(self, service):
        created = original(self, service)
        created.meta.events.register("before-call", lambda model, **_: made.append(model.name))
        return created

    monkeypatch.setattr(Aws, "client", client)
    return made


def test_plan_detailed_exitcode_is_2_before_the_first_deploy(cli, config, aws):
    result = cli("plan", "--config", config, "--detailed-exitcode", "--output", "json")
    assert result.code == 2, result
    doc = json.loads(result.out)
    assert doc["kind"] == "plan" and doc["change_set_type"] == "CREATE" and doc["has_changes"] is True
    assert {"stack": "Root", "action": "Add", "logical_id": "AgentPoolGeneral",
            "resource_type": "AWS::CloudFormation::Stack", "replacement": ""} in doc["changes"]
    assert "plan uploads the templates" in result.err  # people still read what happened, on stderr
    assert doc["estimate"]["kind"] == "create" and doc["estimate"]["total_seconds"] > 0  # model/timing.py


def test_diff_before_the_first_deploy_says_everything_is_new(cli, config, calls):
    result = cli("diff", "--config", config, "--output", "json", "--detailed-exitcode")
    assert result.code == 2, result
    doc = json.loads(result.out)
    assert doc["deployed"] is False and {s["state"] for s in doc["stacks"]} == {"added"}
    assert calls and all(name.startswith(READ_ONLY) for name in calls), calls


def test_deploy_then_plan_detailed_exitcode_is_0(cli, config):
    assert cli("deploy", "--config", config, "--yes").code == 0
    result = cli("plan", "--config", config, "--detailed-exitcode")
    assert result.code == 0, result
    assert "up to date" in result.out


def test_status_output_json(cli, config):
    result = cli("status", "--config", config, "--output", "json")
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["kind"] == "status" and doc["deployed"] is True and doc["healthy"] is True
    assert doc["stack_name"] == STACK and doc["status"] == FIRST_DEPLOY_STATUS
    assert {s["stack"]: s["status"] for s in doc["stacks"]}["AgentPoolGeneral"] == "CREATE_COMPLETE"
    assert "KubeconfigSecretArn" in doc["outputs"]
    (pool,) = [g for g in doc["node_groups"] if g["stack"] == "AgentPoolGeneral"]
    assert (pool["min"], pool["desired"], pool["max"]) == (POOL["min_size"], POOL["desired"], POOL["max_size"])


def test_status_watch_on_a_settled_stack_just_reports(cli, config):
    result = cli("status", "--config", config, "--watch")
    assert result.code == 0 and result.out.startswith(f"{STACK}  {FIRST_DEPLOY_STATUS}"), result


def test_diff_right_after_deploy_finds_nothing_and_writes_nothing(cli, config, calls):
    result = cli("diff", "--config", config, "--detailed-exitcode")
    assert result.code == 0, result
    assert "no differences" in result.out
    assert "GetTemplate" in calls and "DescribeStackResources" in calls
    assert all(name.startswith(READ_ONLY) for name in calls), calls


def test_diff_shows_the_changed_resource_and_parameter(cli, changed_config, calls, aws):
    result = cli("diff", "--config", changed_config, "--output", "json", "--detailed-exitcode")
    assert result.code == 2, result
    doc = json.loads(result.out)
    by_stack = {s["stack"]: s for s in doc["stacks"]}
    # pool sizes travel as parameters: the root's child stack resource changes ...
    (child,) = by_stack["Root"]["resources"]["changed"]
    assert child["logical_id"] == "AgentPoolGeneral" and child["type"] == "AWS::CloudFormation::Stack"
    assert "Properties.Parameters.MaxSize" in child["paths"]
    # ... and so does the value the pool's stack runs with (deployed 3, config now 5)
    assert {"name": "MaxSize", "what": "value", "deployed": "3", "rendered": "5"} in \
        by_stack["AgentPoolGeneral"]["parameters"]["changed"]
    assert by_stack["Security"]["state"] == "unchanged" and by_stack["Servers"]["state"] == "unchanged"
    assert all(name.startswith(READ_ONLY) for name in calls), calls
    text = cli("diff", "--config", changed_config)
    assert "~ AgentPoolGeneral (AWS::CloudFormation::Stack): Properties.Parameters.MaxSize" in text.out, text
    assert "~ parameter MaxSize: '3' -> '5'" in text.out, text
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == FIRST_DEPLOY_STATUS


def test_diff_shows_a_changed_resource_inside_a_child(cli, write_env):
    labelled = write_env("ops-labels.yaml", deploy={"stack_name": STACK},
                         agent_pools=[{**POOL, "labels": {"tier": "batch"}}])
    result = cli("diff", "--config", str(labelled), "--output", "json")
    assert result.code == 0, result
    pool = {s["stack"]: s for s in json.loads(result.out)["stacks"]}["AgentPoolGeneral"]
    assert pool["state"] == "changed", pool
    assert pool["resources"]["changed"] or pool["parameters"]["changed"], pool


def _publish(aws) -> None:
    arn = {o["OutputKey"]: o["OutputValue"] for o in
           aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}["KubeconfigSecretArn"]
    aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=yaml.safe_dump({  # as K3s writes it
        "apiVersion": "v1", "kind": "Config", "current-context": "default",
        "clusters": [{"name": "default", "cluster": {"server": "https://api.example:6443",
                                                     "certificate-authority-data": "Q0E="}}],
        "users": [{"name": "default", "user": {"client-certificate-data": "Q0U=", "client-key-data": "S0VZ"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}]}))


MINE = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
        "clusters": [{"name": "work", "cluster": {"server": "https://work:6443"}},
                     {"name": STACK, "cluster": {"server": "https://stale:6443"}}],
        "users": [{"name": "work", "user": {"token": "abc"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}]}


def test_kubeconfig_merge_keeps_other_contexts_and_adds_the_cluster(cli, config, aws, tmp_path, monkeypatch):
    _publish(aws)
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(MINE))
    monkeypatch.setenv("KUBECONFIG", f"{target}:{tmp_path / 'other'}")  # kubectl writes to the first path
    result = cli("kubeconfig", "--config", config, "--merge")
    assert result.code == 0, result
    merged = yaml.safe_load(target.read_text())
    assert merged["current-context"] == "work"  # unchanged without --set-context
    assert {c["name"] for c in merged["contexts"]} == {"work", STACK}
    clusters = {c["name"]: c["cluster"]["server"] for c in merged["clusters"]}
    assert clusters == {"work": "https://work:6443", STACK: "https://api.example:6443"}  # same name replaced
    (ours,) = [c for c in merged["contexts"] if c["name"] == STACK]
    assert ours["context"] == {"cluster": STACK, "user": STACK}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    (backup,) = target.parent.glob("config.bak-*")
    assert yaml.safe_load(backup.read_text()) == MINE and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert str(target) in result.out
    assert cli("kubeconfig", "--config", config, "--merge", "--set-context").code == 0
    assert yaml.safe_load(target.read_text())["current-context"] == STACK


def test_kubeconfig_never_overwrites_a_file_without_force(cli, config, aws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cli("kubeconfig", "--config", config)
    path = tmp_path / "dev.kubeconfig"  # ./<environment name>.kubeconfig
    assert first.code == 0 and f"export KUBECONFIG={path}" in first.out, first
    path.write_text("mine")
    refused = cli("kubeconfig", "--config", config)
    assert refused.code == 2 and "--force" in refused.err and path.read_text() == "mine", refused
    assert cli("kubeconfig", "--config", config, "--force").code == 0
    assert yaml.safe_load(path.read_text())["current-context"] == STACK


def test_init_from_account_reads_the_account_and_a_vpc(cli, network, tmp_path):
    out = tmp_path / "environments" / "fresh.yaml"
    result = cli("init", "fresh", "--from-account", "--out", str(out))
    assert result.code == 0, result
    doc = yaml.safe_load(out.read_text())
    assert doc["account_id"] == "123456789012" and doc["region"] == "eu-west-1"  # moto's account, the session's region
    assert doc["network"]["vpc_id"] == network["vpc_id"]
    # every private subnet of the VPC, the harness's third zone too (tests/e2e/conftest.py)
    assert sorted(s["id"] for s in doc["network"]["subnets"]) == sorted([*network["subnets"],
                                                                        network["third_zone_subnet"]])
    assert cli("render", "--config", str(out), "--out", str(tmp_path / "build")).code == 0


def test_debug_logs_requests_with_the_secret_masked(cli, config, aws, tmp_path):
    """--debug prints botocore's request log; the kubeconfig read from Secrets Manager
    (GetSecretValue's SecretString) must not appear in it."""
    _publish(aws)
    result = cli("--debug", "-v", "kubeconfig", "--config", config, "--out", str(tmp_path / "k"), "--force")
    assert result.code == 0, result
    assert "GetSecretValue" in result.err and "botocore" in result.err  # the request log is there
    assert '"SecretString": "***"' in result.err or "'SecretString': '***'" in result.err
    assert "client-key-data" not in result.err and "S0VZ" not in result.err
    assert "AWS profile" in result.err  # -v: where the session came from


def test_destroy(cli, config):
    assert cli("destroy", "--config", config, "--yes").code == 0
    result = cli("status", "--config", config, "--output", "json")
    assert result.code == 1 and json.loads(result.out)["deployed"] is False
