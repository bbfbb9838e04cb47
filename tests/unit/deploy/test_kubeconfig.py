"""The admin kubeconfig (deploy/kubeconfig.py), as docs/commands.md "Commands" describes `kubeconfig`
and `kubeconfig --merge`: names after the cluster whatever the node published (K3s writes
`default` for cluster, user and context), mode 0600, never over an existing file without
force; merged like `aws eks update-kubeconfig` (other names kept, same names replaced, a
backup kept, the current context changed only when asked) into the first path of
$KUBECONFIG, else ~/.kube/config (kubectl's loading order:
https://kubernetes.io/docs/reference/kubectl/generated/kubectl_config/). AWS answers from
botocore's Stubber; the whole command against moto is tests/e2e/test_cli_pipeline.py's."""

from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from k3s_infra.cli.kubeconfig import lines
from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError
from k3s_infra.deploy import kubeconfig as kc

DEV = load_environment("dev")
ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-dev-kubeconfig-AbCdEf"


def published(server: str = "https://api.example:6443") -> dict:
    """What K3s writes (/etc/rancher/k3s/k3s.yaml), as the first server publishes it."""
    return {"apiVersion": "v1", "kind": "Config", "current-context": "default", "preferences": {},
            "clusters": [{"name": "default", "cluster": {"server": server, "certificate-authority-data": "Q0E="}}],
            "users": [{"name": "default", "user": {"client-certificate-data": "Q0U=", "client-key-data": "S0VZ"}}],
            "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}]}


def test_every_name_becomes_the_clusters_and_a_second_entry_keeps_its_own_after_it():
    doc = published()
    doc["clusters"].append({"name": "other", "cluster": {"server": "https://b:6443"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "other", "user": "default"}})
    doc["users"].append("not an entry")
    out = kc.normalise(doc, "k3s-dev")
    assert [c["name"] for c in out["clusters"]] == ["k3s-dev", "k3s-dev-other"]
    assert [u["name"] for u in out["users"] if isinstance(u, dict)] == ["k3s-dev"]
    assert out["contexts"] == [{"name": "k3s-dev", "context": {"cluster": "k3s-dev", "user": "k3s-dev"}},
                               {"name": "k3s-dev-other", "context": {"cluster": "k3s-dev-other", "user": "k3s-dev"}}]
    assert out["current-context"] == "k3s-dev"


def test_a_context_naming_what_the_file_lacks_is_left_alone_and_so_is_a_file_without_contexts():
    doc = published()
    doc["contexts"][0]["context"] = {"cluster": "elsewhere", "user": "someone"}
    assert kc.normalise(doc, "k3s-dev")["contexts"][0]["context"] == {"cluster": "elsewhere", "user": "someone"}
    bare = {"apiVersion": "v1", "clusters": [{"name": "default", "cluster": {}}]}
    assert "current-context" not in kc.normalise(bare, "k3s-dev")


def _mine() -> dict:
    return kc.normalise(published("https://new:6443"), "k3s-dev")


def _theirs() -> dict:
    return {"apiVersion": "v1", "kind": "Config", "current-context": "work",
            "clusters": [{"name": "work", "cluster": {"server": "https://work:6443"}},
                         {"name": "k3s-dev", "cluster": {"server": "https://old:6443"}}],
            "users": [{"name": "work", "user": {}}], "contexts": [{"name": "work", "context": {"cluster": "work"}}]}


def test_merging_keeps_other_names_in_place_and_replaces_the_same_name():
    merged = kc.merge(_theirs(), _mine(), set_context=False)
    assert [(c["name"], c["cluster"]["server"]) for c in merged["clusters"]] == [
        ("work", "https://work:6443"), ("k3s-dev", "https://new:6443")]
    assert [u["name"] for u in merged["users"]] == ["work", "k3s-dev"]
    assert merged["current-context"] == "work"
    assert kc.merge(_theirs(), _mine(), set_context=True)["current-context"] == "k3s-dev"


def test_merging_into_an_empty_file_makes_a_kubeconfig_whose_context_is_the_cluster():
    merged = kc.merge({}, _mine(), set_context=False)
    assert (merged["apiVersion"], merged["kind"], merged["current-context"]) == ("v1", "Config", "k3s-dev")


def test_kubectl_s_file_is_the_first_path_of_kubeconfig_else_the_home_one(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(["", str(tmp_path / "a"), str(tmp_path / "b")]))
    assert kc.default_target() == tmp_path / "a"
    monkeypatch.setenv("KUBECONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kc.default_target() == tmp_path / ".kube" / "config"


def test_a_private_file_is_0600_and_replaces_what_was_there(tmp_path):
    target = tmp_path / "dir" / "k"
    kc.write_private(target, "one")
    kc.write_private(target, "two")
    assert target.read_text() == "two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["k"]  # no temporary file left


class Rig:
    def __init__(self):
        self.cfn = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                                aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")
        self.sm = boto3.client("secretsmanager", region_name="eu-west-1", aws_access_key_id="x",
                               aws_secret_access_key="x", endpoint_url="https://secretsmanager.invalid")
        self.cfn_stub, self.sm_stub = Stubber(self.cfn), Stubber(self.sm)
        self.aws = SimpleNamespace(env=DEV, cloudformation=self.cfn, secretsmanager=self.sm,
                                   check_account=lambda: DEV.account_id)

    def stack(self, outputs: dict[str, str]) -> None:
        item = {"StackId": ROOT, "StackName": "k3s-dev", "CreationTime": "2026-01-02T03:04:05Z",
                "StackStatus": "CREATE_COMPLETE", "Outputs": [{"OutputKey": k, "OutputValue": v}
                                                              for k, v in outputs.items()]}
        for _ in range(2):  # once to know it exists, once for its outputs
            self.cfn_stub.add_response("describe_stacks", {"Stacks": [item]}, {"StackName": "k3s-dev"})

    def secret(self, text: str) -> None:
        self.sm_stub.add_response("get_secret_value", {"ARN": SECRET, "Name": "k3s-dev-kubeconfig",
                                                       "SecretString": text}, {"SecretId": SECRET})

    def __enter__(self):
        self.cfn_stub.activate()
        self.sm_stub.activate()
        return self

    def __exit__(self, *exc):
        self.cfn_stub.deactivate()
        self.sm_stub.deactivate()


def test_the_published_kubeconfig_is_read_from_the_secret_the_stack_names():
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret(yaml.safe_dump(published()))
        doc, arn = kc.fetch(rig.aws)
    assert arn == SECRET and doc == published()


def test_a_placeholder_is_not_published_yet_and_a_missing_output_or_stack_is_an_error():
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret('{"generated": "x8#placeholder"}')  # what GenerateSecretString left there
        with pytest.raises(kc.NotPublished):
            kc.fetch(rig.aws)
        rig.stack({"ApiDnsName": "api.example"})
        with pytest.raises(DeployError, match="no KubeconfigSecretArn output"):
            kc.fetch(rig.aws)
        rig.cfn_stub.add_client_error("describe_stacks", "ValidationError", "Stack with id k3s-dev does not exist")
        with pytest.raises(DeployError, match="not deployed"):
            kc.fetch(rig.aws)


def test_an_unreadable_secret_names_the_error_code_and_never_the_value():
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.sm_stub.add_client_error("get_secret_value", "AccessDeniedException", "not authorized")
        with pytest.raises(DeployError, match=f"cannot read the kubeconfig secret {SECRET}: AccessDeniedException"):
            kc.fetch(rig.aws)


def test_an_own_file_is_written_once_and_replaced_only_with_force(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret(yaml.safe_dump(published()))
        written = kc.kubeconfig(rig.aws, None)
        assert written.target == tmp_path / "dev.kubeconfig" and not written.merged
        assert written.servers == ("https://api.example:6443",) and written.context == "k3s-dev"
        assert yaml.safe_load(written.target.read_text())["current-context"] == "k3s-dev"
        with pytest.raises(FileExistsError):
            kc.kubeconfig(rig.aws, None)  # refused before any AWS call
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret(yaml.safe_dump(published("https://other:6443")))
        assert kc.kubeconfig(rig.aws, None, force=True).servers == ("https://other:6443",)


def test_merging_keeps_a_private_backup_and_changes_the_context_only_when_asked(tmp_path, monkeypatch):
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(_theirs()))
    monkeypatch.setenv("KUBECONFIG", str(target))
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret(yaml.safe_dump(published()))
        written = kc.kubeconfig(rig.aws, None, merge_into=True)
    assert written.merged and written.target == target and not written.current_context_set
    assert written.backup.name.startswith("config.bak-") and yaml.safe_load(written.backup.read_text()) == _theirs()
    assert stat.S_IMODE(written.backup.stat().st_mode) == 0o600
    doc = yaml.safe_load(target.read_text())
    assert doc["current-context"] == "work" and [c["name"] for c in doc["contexts"]] == ["work", "k3s-dev"]


def test_merging_into_a_file_that_is_not_a_mapping_writes_nothing(tmp_path):
    target = tmp_path / "config"
    target.write_text("- just\n- a list\n")
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret(yaml.safe_dump(published()))
        with pytest.raises(DeployError, match="not a kubeconfig"):
            kc.kubeconfig(rig.aws, target, merge_into=True)
    assert target.read_text() == "- just\n- a list\n" and os.listdir(tmp_path) == ["config"]


def test_the_file_is_private_before_it_takes_its_name(tmp_path, monkeypatch):
    """Mode 0600 from the first byte: no moment where another user may read the credentials."""
    modes, rename = [], os.replace
    monkeypatch.setattr(kc.os, "replace", lambda src, dst: (modes.append(stat.S_IMODE(os.stat(src).st_mode)),
                                                            rename(src, dst)))
    kc.write_private(tmp_path / "k", "secret")
    assert modes == [0o600]


def test_a_write_that_fails_leaves_neither_a_temporary_file_nor_a_changed_target(tmp_path, monkeypatch):
    target = tmp_path / "k"
    target.write_text("before")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(kc.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        kc.write_private(target, "after")
    assert os.listdir(tmp_path) == ["k"] and target.read_text() == "before"


def test_another_account_is_refused_before_the_secret_is_read(tmp_path):
    class Refused(Exception):
        pass

    def refuse():
        raise Refused("credentials are for account 999999999999")

    with Rig() as rig:  # nothing queued: any AWS call fails the test
        rig.aws.check_account = refuse
        with pytest.raises(Refused):
            kc.kubeconfig(rig.aws, tmp_path / "k")
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("before, set_context, current", [
    (None, False, True),        # a new file: its only context is the current one, asked or not
    ({"apiVersion": "v1", "kind": "Config", "clusters": []}, False, True),  # a file without a current context
    ("theirs", False, False),   # another current context: kept
    ("theirs", True, True),
])
def test_merging_reports_whether_the_cluster_s_context_is_current_as_the_file_says(tmp_path, before, set_context,
                                                                                   current):
    target = tmp_path / "config"
    if before is not None:
        target.write_text(yaml.safe_dump(_theirs() if before == "theirs" else before))
    with Rig() as rig:
        rig.stack({"KubeconfigSecretArn": SECRET})
        rig.secret(yaml.safe_dump(published()))
        written = kc.kubeconfig(rig.aws, target, merge_into=True, set_context=set_context)
    assert written.current_context_set is current
    assert (yaml.safe_load(target.read_text())["current-context"] == "k3s-dev") is current
    said = lines(written)[-2]  # what the user reads
    assert ("current context set to it" in said) is current
    assert ("current context unchanged (--set-context to switch)" in said) is not current
