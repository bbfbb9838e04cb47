"""The quorum guard's rule: etcd keeps accepting writes only while a majority
(floor(n/2)+1) of its n members is up (https://etcd.io/docs/v3.5/faq/#what-is-failure-tolerance),
so one deploy may not take servers.count below a majority of the servers running now."""

from __future__ import annotations

import copy

import pytest

from k3s_infra.config import ConfigError, validate
from k3s_infra.deploy import Refused
from k3s_infra.deploy.quorum import check, safe_steps


@pytest.mark.parametrize("current,target", [(3, 1), (5, 1), (7, 3), (9, 3), (9, 1)])
def test_losing_the_majority_in_one_step_is_refused(current, target):
    with pytest.raises(Refused) as caught:
        check(current, target)
    assert f"{current} -> {target}" in str(caught.value)


@pytest.mark.parametrize("current,target", [(5, 3), (3, 5), (1, 3), (3, 3), (7, 5), (9, 5), (1, 1)])
def test_keeping_the_majority_is_allowed(current, target):
    check(current, target)


def test_first_deploy_has_nothing_to_guard():
    check(None, 1)


def test_the_refusal_shows_the_safe_steps():
    with pytest.raises(Refused) as caught:
        check(7, 3)
    assert "7 -> 5 -> 3" in str(caught.value)
    assert safe_steps(9, 3) == [9, 5, 3]  # 9 keeps 5 (its majority), 5 keeps 3


@pytest.mark.parametrize("current", [3, 5, 9])
def test_one_server_is_reached_only_through_a_snapshot_restore(current):
    with pytest.raises(Refused) as caught:
        check(current, 1)
    message = str(caught.value)
    assert "k3s-infra restore" in message and "--allow-quorum-loss" in message
    # no scale-in from 3 keeps a majority of 3 (2 of 3) with 1 server
    assert safe_steps(current, 1)[-1] == 3


@pytest.mark.parametrize("value", ["ami-123", "ami-0123456789ABCDEF0", "image-0123456789abcdef0",
                                   "ami-0123456789abcdef01234"])
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_explicit_ami_id_shape(env_document, value, arch):
    doc = copy.deepcopy(env_document("dev"))
    doc["nodes"]["ami_id"] = {arch: value}
    with pytest.raises(ConfigError) as caught:
        validate(doc, "env.yaml")
    assert [path for path, _ in caught.value.problems] == [f"nodes.ami_id.{arch}"]
    assert "env.yaml" in str(caught.value)


def test_explicit_ami_id_accepted(env_document):
    doc = copy.deepcopy(env_document("dev"))
    doc["nodes"]["ami_id"] = {"x86_64": "ami-0123456789abcdef0", "arm64": "ami-0fedcba9876543210"}
    ids = validate(doc, "env.yaml").nodes.ami_id
    assert (ids.x86_64, ids.arm64) == ("ami-0123456789abcdef0", "ami-0fedcba9876543210")
