"""The drill side's fence in the shared artifact bucket, for every S3 call that changes an object.

docs/operations.md "Why it cannot touch the cluster": the drill's clients refuse any call that
changes something and names "an artifact-bucket key outside <stack>-drill/". Which calls change
an object under a key comes from botocore's S3 model (service-2.json), not from the fence: every
operation that is not a Describe/Get/List/Head and takes a Bucket and a Key (UpdateObjectEncryption,
PutObjectRetention and the like included), and DeleteObjects with its Delete.Objects keys. A refused
call raises before anything is sent (no stubbed response is consumed)."""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy.drill_env import Fenced, drill_environment, fenced

ENV = load_environment("dev")
DRILL = drill_environment(ENV)
S3 = botocore.session.get_session().get_service_model("s3")
KEYED_WRITES = sorted(op for op in S3.operation_names
                      if not op.startswith(("Describe", "Get", "List", "Head"))
                      and {"Bucket", "Key"} <= set(S3.operation_model(op).input_shape.members))


def _s3():
    session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=ENV.region)
    s3 = fenced(DRILL, session, frozenset({ENV.stack_name})).s3
    stubber = Stubber(s3)
    stubber.activate()
    return s3, stubber


def test_the_model_has_the_object_writes_the_fence_is_about():
    assert {"PutObject", "CopyObject", "DeleteObject", "UploadPart", "PutObjectTagging"} <= set(KEYED_WRITES)


@pytest.mark.parametrize("operation", KEYED_WRITES)
def test_no_object_write_outside_the_drills_prefix_in_the_artifact_bucket(operation):
    s3, stubber = _s3()
    with pytest.raises(Fenced, match=f"outside the drill's prefix {DRILL.stack_name}/"):
        getattr(s3, xform_name(operation))(Bucket=DRILL.artifact_bucket, Key=f"{ENV.stack_name}/lock.json")
    stubber.assert_no_pending_responses()


def test_delete_objects_with_one_key_outside_the_drills_prefix_is_refused():
    s3, stubber = _s3()
    with pytest.raises(Fenced, match=f"of s3://{DRILL.artifact_bucket}/{ENV.stack_name}/templates/a.yaml"):
        s3.delete_objects(Bucket=DRILL.artifact_bucket, Delete={"Objects": [
            {"Key": f"{DRILL.stack_name}/templates/a.yaml"}, {"Key": f"{ENV.stack_name}/templates/a.yaml"}]})
    stubber.assert_no_pending_responses()
