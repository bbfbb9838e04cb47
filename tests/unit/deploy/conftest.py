"""The Rig (tests/support/stack_stubs.py) as the CLI's clients, with the steps that do not
depend on the stack's status replaced by fakes that record what they were asked to do:
shared by the status table (test_stack_status_table.py) and the interrupt tests
(test_interrupts.py)."""

from __future__ import annotations

import functools
from contextlib import contextmanager, nullcontext
from types import SimpleNamespace

import pytest

from k3s_infra.cli import aws as cli_aws
from k3s_infra.config import load_environment
from k3s_infra.deploy import (artifacts, groups, images, leftovers, lifecycle, lock, preflight, protection, quorum,
                              readiness, restore_request, retained, roll_order, teardown, upgrade_checks)
from k3s_infra.deploy.progress import ArtifactsCleaned, NodeParametersDeleted
from k3s_infra.render import render
from tests.support.stack_stubs import NAME, Rig

ENV = load_environment("dev")


@contextmanager
def _unlocked(aws, command, on_progress=None, *, force=False):
    """The stack's lock has its own tests (test_lock.py, tests/e2e/test_deploy_lock.py)."""
    yield on_progress


@pytest.fixture
def unlocked(monkeypatch):
    """Deploy, destroy and restore without their lock (which has its own tests)."""
    monkeypatch.setattr(lock, "held", _unlocked)


@pytest.fixture
def rig(monkeypatch):
    """A Rig whose clients the CLI uses, with the steps that do not depend on the status faked."""
    made = Rig(ENV)
    log = made.effects.append
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(cli_aws, "Aws", lambda env, session=None: made.aws)
    session = SimpleNamespace(profile_name=None)  # the clients are the Rig's
    monkeypatch.setattr(cli_aws, "boto3", SimpleNamespace(Session=lambda **kwargs: session))
    monkeypatch.setattr(preflight, "gate", lambda *args, **kwargs: None)
    # k3s.version as the stack pins it: the upgrade pre-flight has its own tests (test_upgrade_checks.py,
    # tests/unit/cli/test_upgrade.py, tests/e2e/test_upgrade.py for plan and deploy)
    monkeypatch.setattr(upgrade_checks, "for_plan", lambda *args, **kwargs: None)
    monkeypatch.setattr(lifecycle, "render", lambda env: _rendering())
    monkeypatch.setattr(teardown, "render", lambda env: _rendering())
    monkeypatch.setattr(lifecycle, "package", lambda aws, rendering, *args, **kwargs: log("upload") or Packaged(
        rendering))
    monkeypatch.setattr(retained, "check_first_deploy", lambda aws, root: None)
    monkeypatch.setattr(quorum, "current_servers", lambda aws, root: None)
    monkeypatch.setattr(quorum, "check_servers_ready", lambda aws, root, changes: log("servers ready checked"))
    monkeypatch.setattr(images, "choose", lambda aws, root, update_image=False: [])
    monkeypatch.setattr(artifacts, "prepare", lambda aws, **kwargs: [])  # K3s files: downloads
    monkeypatch.setattr(restore_request, "read", lambda ssm, name, now: None)
    monkeypatch.setattr(protection, "lifted_during_update", lambda aws, root, protected: nullcontext())
    monkeypatch.setattr(protection, "apply", lambda aws, root_id, protected: log("protection set") or ())
    monkeypatch.setattr(protection, "protected_load_balancers", lambda aws, root_id: ())
    monkeypatch.setattr(readiness, "wait_for_nodes", lambda aws, stack, **kwargs: log("nodes awaited"))
    # After a first create, the update to the ordered root (its own tests: test_roll_order).
    monkeypatch.setattr(roll_order, "record", lambda aws, pkg, parameters, stack, on_progress, poll:
                        log("roll order recorded"))
    # Before an update, the deployed root holds the order (an unrecorded one: test_roll_order_wiring).
    monkeypatch.setattr(roll_order, "ensure", lambda aws, pkg, root, on_progress, poll, **kwargs: False)
    monkeypatch.setattr(roll_order, "missing_order", lambda aws, rendering, root: {})
    monkeypatch.setattr(groups, "cluster_vpc", lambda aws, root_id: None)
    monkeypatch.setattr(leftovers, "find", lambda aws, vpc=None: leftovers.Leftovers(f"{NAME}=owned"))
    monkeypatch.setattr(teardown, "_retained", lambda aws, rendering, nested: [])  # parses every template
    monkeypatch.setattr(teardown, "_delete_node_parameters", lambda aws: log("node parameters deleted") or
                        NodeParametersDeleted(()))
    monkeypatch.setattr(teardown, "_empty_artifacts", lambda aws: log("templates removed") or
                        ArtifactsCleaned(aws.env.artifact_bucket, existed=False))
    monkeypatch.setattr(lock, "held", _unlocked)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    yield made
    made.close()


@functools.cache
def _rendering():
    """dev's templates, rendered once for every row (what a plan shows reads them)."""
    return render(ENV)


class Packaged:
    """What package returns: the root inline (whichever change set type asks)."""

    def __init__(self, rendering):
        self.rendering, self.uploaded, self.reused = rendering, [], []
        self.roots = {kind: {"TemplateBody": "{}"} for kind in ("CREATE", "UPDATE")}

    def template_args(self, *change_set_type: str) -> dict[str, str]:
        return {"TemplateBody": "{}"}
