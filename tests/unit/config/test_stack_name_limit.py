"""Issue 23: long stack names cannot break the names derived from them. A nested stack is
named <root>-<child logical ID>-<suffix> (AWS CloudFormation User Guide, "Nested stacks"; the
suffix CloudFormation adds is 13 characters, e.g. ...-WebUiStack-1HWNXXXXW4UVX), and a stack
name is at most 128 characters (CreateStack API reference). The node roles may signal only
stack/<root>-<child ID>-* (components/iam.py), so the root must leave room for the longest child."""

from __future__ import annotations

import pytest

from k3s_infra.config import types
from k3s_infra.model import naming
from tests.support.config_errors import paths, refused

CLOUDFORMATION_STACK_NAME_MAX = 128  # CreateStack: StackName, "no longer than 128 characters"
GENERATED_SUFFIX = 13


def _longest_child_id() -> str:
    # Pool names: 2-24 characters (config/types.py Name); the logical ID drops the dashes.
    return max([naming.agent_pool_stack("a" + "b" * 23), naming.STACK_SERVER_INIT, naming.STACK_SERVERS,
                naming.STACK_API_ENDPOINT, naming.STACK_CLUSTER_DATA, naming.STACK_NODE_IAM, naming.STACK_NETWORK,
                naming.STACK_SECURITY, naming.STACK_DRAINING, naming.STACK_IDENTITY], key=len)


def test_the_longest_nested_stack_name_fits_cloudformation_s_limit():
    longest = f"{'s' * types.STACK_NAME_MAX}-{_longest_child_id()}-{'X' * GENERATED_SUFFIX}"
    assert len(longest) <= CLOUDFORMATION_STACK_NAME_MAX
    # and the cap is not needlessly low
    assert len(longest) + 1 > CLOUDFORMATION_STACK_NAME_MAX


@pytest.mark.parametrize("length, ok", [(types.STACK_NAME_MAX, True), (types.STACK_NAME_MAX + 1, False)])
def test_stack_names_longer_than_the_cap_are_refused(env_document, length, ok):
    from k3s_infra.config import validate

    document = env_document("dev")
    document.setdefault("deploy", {})["stack_name"] = "k" * length
    if ok:
        assert validate(document, "dev.yaml").stack_name == "k" * length
    else:
        error = refused(document)
        assert paths(error) == ["deploy.stack_name"] and "at most 80 characters" in str(error)
