"""Before anything is uploaded, deploy/lifecycle.py ``_prepare`` decides on etcd quorum from the
servers running now and the file's servers.count: etcd needs a majority of its members to accept
writes (https://etcd.io/docs/v3.5/faq/#what-is-failure-tolerance: a cluster of N tolerates
(N-1)/2 failures), so a deploy that would leave fewer than floor(N/2)+1 is refused unless
--allow-quorum-loss, which is then reported. Every row on both sides of the majority; the
steps around it (stack reads, images, K3s files) are faked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from k3s_infra.deploy import Refused, artifacts, changeset, images, lifecycle, quorum, retained, stack_states
from k3s_infra.deploy.progress import Packaged, PlanUploads, QuorumLossAllowed

ROWS = [  # running servers (None: first deploy), servers.count, --allow-quorum-loss, outcome
    (None, 3, False, "goes on"),
    (None, 1, True, "goes on"),          # nothing runs: nothing to lose, nothing to report
    (3, 3, False, "goes on"),
    (3, 1, False, "refused"),            # 1 < majority(3) = 2
    (3, 1, True, "allowed, said"),
    (5, 3, False, "goes on"),            # 3 = majority(5): the smallest count that keeps quorum
    (5, 3, True, "goes on"),             # allowed but not needed: nothing is said
    (5, 1, False, "refused"),
    (5, 1, True, "allowed, said"),
    (1, 3, False, "goes on"),            # growing never loses quorum
]


@pytest.mark.parametrize("running, count, allow, outcome", ROWS)
def test_quorum_decision_before_any_upload(monkeypatch, running, count, allow, outcome):
    root = None if running is None else {"StackName": "k3s-dev", "StackStatus": "UPDATE_COMPLETE"}
    monkeypatch.setattr(changeset, "stack_state", lambda cfn, name: root)
    monkeypatch.setattr(stack_states, "change_set_type", lambda name, stack: "CREATE" if stack is None else "UPDATE")
    monkeypatch.setattr(retained, "check_first_deploy", lambda aws, stack: None)
    monkeypatch.setattr(lifecycle, "check_issuer_upgrade", lambda env, stack: None)
    monkeypatch.setattr(quorum, "current_servers", lambda aws, stack: running)
    monkeypatch.setattr(images, "choose", lambda aws, stack, update_image: [])
    monkeypatch.setattr(images, "stack_parameters", lambda choices: [])
    monkeypatch.setattr(artifacts, "prepare", lambda aws, directory, on_progress: [])
    aws = SimpleNamespace(env=SimpleNamespace(stack_name="k3s-dev", servers=SimpleNamespace(count=count)),
                          cloudformation=None, check_account=lambda: "123456789012")
    said = []
    if outcome == "refused":
        with pytest.raises(Refused, match=f"servers.count {running} -> {count}"):
            lifecycle._prepare(aws, said.append, update_image=False, allow_quorum_loss=allow)
        assert said == []
        return
    assert lifecycle._prepare(aws, said.append, update_image=False, allow_quorum_loss=allow) == (root, [])
    assert said == ([QuorumLossAllowed(running, count)] if outcome == "allowed, said" else [])


def test_the_account_is_checked_before_anything_is_read():
    """A library caller (not only the CLI) gets the account check first: a wrong account stops
    _prepare before the stack is even described."""
    class WrongAccount(Exception):
        pass

    def check_account():
        raise WrongAccount

    aws = SimpleNamespace(env=SimpleNamespace(stack_name="k3s-dev"), check_account=check_account)  # no cloudformation
    with pytest.raises(WrongAccount):
        lifecycle._prepare(aws, [].append, update_image=False)


@pytest.mark.parametrize("keep", [None, lambda planned: None])
def test_plan_says_it_uploads_then_what_it_packaged(monkeypatch, keep):
    """plan's progress: the uploads (kept: the change set stays for a plan file), then the package."""
    pkg, cs = object(), SimpleNamespace(empty=True, stack_arn="arn")
    monkeypatch.setattr(lifecycle, "_prepare", lambda aws, on_progress, **kw: (None, []))
    monkeypatch.setattr(lifecycle, "render", lambda env: "rendering")
    monkeypatch.setattr(lifecycle, "package", lambda aws, rendering: pkg)
    monkeypatch.setattr(changeset, "create", lambda aws, package, parameters, current: cs)
    monkeypatch.setattr(changeset, "discard", lambda aws, change_set: None)
    said = []
    aws = SimpleNamespace(env=SimpleNamespace(artifact_bucket="bucket"))
    lifecycle.plan(aws, on_progress=said.append, keep=keep)
    assert said[:2] == [PlanUploads("bucket", kept=keep is not None), Packaged(pkg)]


def test_deploy_checks_the_account_before_it_takes_the_lock(monkeypatch):
    """The lock is an object in the artifact bucket: credentials of another account must not write
    one there (nor anywhere) before they are refused."""
    class WrongAccount(Exception):
        pass

    def check_account():
        raise WrongAccount

    taken = []
    monkeypatch.setattr(lifecycle.lock, "held", lambda *args, **kwargs: taken.append(args))
    aws = SimpleNamespace(env=SimpleNamespace(stack_name="k3s-dev"), check_account=check_account)
    with pytest.raises(WrongAccount):
        lifecycle.deploy(aws, confirm=lambda change_set: True)
    assert taken == []
