"""One deploy, destroy or restore at a time per stack (deploy/lock.py), against the session's
moto server, whose S3 checks If-None-Match and If-Match as the S3 API Reference states
(moto 5.2.5 s3/responses.py put_object, delete_object). A first deploy waits at its prompt
(the library, in a thread: the CLI's output capture is per process); meanwhile a second
deploy, a destroy and a restore through the CLI are refused, naming the first's holder.
Then a lock left by a run that died is removed with --force-unlock, and an expired one is
taken over with a warning. The tests run in file order."""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from k3s_infra.config import load_environment
from k3s_infra.deploy import lifecycle, lock
from k3s_infra.deploy.aws import Aws
from tests.support.emulated_account import REGION

STACK = "k3s-locked"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 1,
        "root_volume_gb": 30}
MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's GetCallerIdentity


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("locked.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL], servers={"count": 1}))


def _aws(config: str) -> Aws:
    return Aws(load_environment(path=config), boto3.Session(region_name=REGION))


def _lock_object(aws, config: str):
    env = load_environment(path=config)
    found = aws.s3.list_object_versions(Bucket=env.artifact_bucket, Prefix=f"{STACK}/lock.json")
    return found.get("Versions", []) + found.get("DeleteMarkers", [])


def test_a_second_deploy_destroy_or_restore_is_refused_naming_the_first(cli, config, aws):
    at_prompt, go, ended = threading.Event(), threading.Event(), {}

    def confirm(change_set) -> bool:
        at_prompt.set()
        go.wait(120)
        return False  # declined: the first deploy ends without executing

    def first() -> None:
        ended["result"] = lifecycle.deploy(_aws(config), confirm=confirm, poll=0.1)

    thread = threading.Thread(target=first, daemon=True)
    thread.start()
    try:
        assert at_prompt.wait(120), "the first deploy never reached its prompt"
        holder = f"deploy by {MOTO_CALLER} on {socket.gethostname()} (pid {os.getpid()}) since "
        for argv in (["deploy", "--yes"], ["destroy", "--yes"], ["restore", "--yes"]):
            refused = cli(argv[0], "--config", config, *argv[1:])
            assert refused.code == 1, refused
            assert f"stack {STACK} is locked: {holder}" in refused.err and "--force-unlock" in refused.err, refused
        assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == \
            "REVIEW_IN_PROGRESS"  # only the first deploy's change set: the refused ones made nothing
    finally:
        go.set()
        thread.join(120)
    assert ended["result"].outcome == "declined"
    assert _lock_object(aws, config) == []  # released, no version left


def test_a_lock_left_by_a_run_that_died_is_removed_with_force_unlock(cli, config, aws):
    lock.acquire(_aws(config), "deploy")  # and never released: the run was killed
    refused = cli("deploy", "--config", config, "--yes")
    assert refused.code == 1 and "is locked" in refused.err, refused
    forced = cli("deploy", "--config", config, "--yes", "--force-unlock")
    assert forced.code == 0, forced
    assert f"--force-unlock: removed the lock of deploy by {MOTO_CALLER}" in forced.out
    assert _lock_object(aws, config) == []


def test_an_expired_lock_is_taken_over_with_a_warning(cli, config, aws):
    long_ago = datetime.now(timezone.utc) - lock.LEASE - timedelta(minutes=5)
    stale = lock.acquire(_aws(config), "restore", now=long_ago)  # expired 5 minutes ago
    result = cli("destroy", "--config", config, "--yes")
    assert result.code == 0, result
    assert f"warning: took over an expired lock (s3://{stale.bucket}/{stale.key}): restore by {MOTO_CALLER}" \
        in result.out
