"""The stack's lock (k3s_infra/deploy/lock.py) against moto's S3, which models the conditional
writes the lock relies on as the S3 API Reference states them (PutObject: If-None-Match "*"
fails with 412 PreconditionFailed where the key exists, If-Match with 412 where the ETag
differs; DeleteObject If-Match the same, https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html,
API_DeleteObject.html; moto 5.2.5 s3/responses.py put_object and delete_object check both). The
409 ConditionalRequestConflict of a write racing another (retried, as the reference says) and
exact answers are pinned with botocore's Stubber."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from io import BytesIO

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from moto import mock_aws

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, lock
from k3s_infra.deploy.progress import Deleting, Executing
from k3s_infra.deploy.aws import Aws
from k3s_infra.model import naming
from tests.support.isolated import in_child

ENV = load_environment("dev")
BUCKET, KEY = ENV.artifact_bucket, "k3s-dev/lock.json"  # naming.lock_key: under the cluster's prefix
MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"  # moto's GetCallerIdentity for its default account


@pytest.fixture
def credentials(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _aws() -> Aws:
    return Aws(ENV, boto3.Session(region_name=ENV.region))


def _versions(s3) -> list[dict]:
    found = s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)
    return found.get("Versions", []) + found.get("DeleteMarkers", [])


def _document(s3) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())


def test_the_key_is_the_clusters():
    assert naming.lock_key(ENV) == KEY


@in_child
@mock_aws
def test_a_second_run_is_refused_naming_who_holds_the_lock_since_when(credentials):
    first = lock.acquire(_aws(), "deploy")
    with pytest.raises(lock.Locked) as refused:
        lock.acquire(_aws(), "restore")
    holder = refused.value.holder
    assert (holder.who, holder.command, holder.pid, holder.host) == (MOTO_CALLER, "deploy", first.holder.pid,
                                                                      first.holder.host)
    text = str(refused.value)
    assert f"deploy by {MOTO_CALLER} on {first.holder.host} (pid {first.holder.pid}) since " \
           f"{first.holder.since:%Y-%m-%d %H:%M:%S} UTC" in text and "--force-unlock" in text
    document = _document(_aws().s3)
    assert document["kind"] == "k3s-infra-lock" and document["command"] == "deploy"
    assert datetime.fromisoformat(document["expires"]) - datetime.fromisoformat(document["since"]) == timedelta(hours=1)


@in_child
@mock_aws
def test_release_leaves_no_version_behind_and_the_next_run_takes_it(credentials):
    taken = lock.acquire(_aws(), "deploy")
    taken.renew()  # two more versions of the object in the versioned bucket
    taken.renew()
    assert len(_versions(taken.s3)) == 3
    taken.release()
    assert _versions(taken.s3) == []  # no delete marker, no older version resurfacing
    lock.acquire(_aws(), "destroy").release()


@in_child
@mock_aws
def test_an_expired_lock_is_taken_over_with_a_warning_and_its_holder_loses_it(credentials):
    stale = lock.acquire(_aws(), "deploy")
    stale.renew()  # the stale holder's versions, all to go with the take-over
    seen = []
    later = stale.holder.expires + timedelta(seconds=1)
    taker = lock.acquire(_aws(), "destroy", on_progress=seen.append, now=later)
    assert seen == [lock.LockTakenOver(stale.holder, f"s3://{BUCKET}/{KEY}")]
    assert [v["VersionId"] for v in _versions(taker.s3)] == taker.versions
    assert _document(taker.s3)["command"] == "destroy"
    lost = []
    stale.renew(lost.append)  # its ETag is no longer the object's
    assert lost == [lock.LockLost(f"s3://{BUCKET}/{KEY}")]
    stale.release()  # deletes only its own (gone) versions
    assert _document(taker.s3)["command"] == "destroy"
    with pytest.raises(lock.Locked):
        lock.acquire(_aws(), "deploy", now=later)


@in_child
@mock_aws
def test_a_holder_that_lost_its_lock_stops_before_an_irreversible_step(credentials):
    """A prompt left open past the lease: another run took the lock over. The first run's next
    Executing (deploy) or Deleting (destroy), or destroy's confirm_held after its prompt, raises
    instead of going on; an ordinary message only warns."""
    stale = lock.acquire(_aws(), "deploy")
    lock.acquire(_aws(), "restore", now=stale.holder.expires + timedelta(seconds=1))  # takes it over
    seen = []
    progress = stale.renewing(seen.append)
    for checkpoint in (Executing("UPDATE", "k3s-dev"), Deleting("k3s-dev")):
        with pytest.raises(DeployError, match="taken over by another run"):
            progress(checkpoint)
        assert checkpoint not in seen  # never reported as happening
    with pytest.raises(DeployError, match="taken over by another run"):
        progress.confirm_held()
    assert _document(stale.s3)["command"] == "restore"  # the other run's lock stands


@in_child
@mock_aws
def test_a_holder_that_still_holds_its_lock_goes_on_at_the_checkpoint(credentials):
    held = lock.acquire(_aws(), "deploy")
    seen = []
    progress = held.renewing(seen.append)
    progress.confirm_held()
    progress(Executing("UPDATE", "k3s-dev"))
    assert seen == [Executing("UPDATE", "k3s-dev")] and len(held.versions) == 3  # acquired, confirmed twice
    held.release()


@in_child
@mock_aws
def test_force_unlock_removes_a_live_lock_and_says_whose(credentials):
    held = lock.acquire(_aws(), "deploy")
    seen = []
    forced = lock.acquire(_aws(), "deploy", force=True, on_progress=seen.append)
    assert seen == [lock.LockRemoved(held.holder, True, f"s3://{BUCKET}/{KEY}")]
    assert _document(forced.s3)["since"] == forced.holder.since.isoformat()
    forced.release()
    seen.clear()
    lock.acquire(_aws(), "deploy", force=True, on_progress=seen.append).release()
    assert seen == [lock.LockRemoved(None, False, f"s3://{BUCKET}/{KEY}")]


@in_child
@mock_aws
def test_an_unreadable_lock_object_is_never_taken_over_only_forced(credentials):
    aws = _aws()
    lock.acquire(aws, "deploy").release()  # the bucket exists now
    aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"not a lock")
    with pytest.raises(lock.Locked, match="an unreadable lock object"):
        lock.acquire(_aws(), "deploy", now=datetime.now(timezone.utc) + timedelta(days=30))
    lock.acquire(_aws(), "deploy", force=True).release()
    assert _versions(aws.s3) == []


@in_child
@mock_aws
def test_without_versioning_release_deletes_the_object_only_while_it_is_still_its_own(credentials):
    s3 = _aws().s3
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": ENV.region})  # no versioning
    first = lock.acquire(_aws(), "deploy")
    assert first.versions == [None]
    first.release()
    assert _versions(s3) == []
    stale = lock.acquire(_aws(), "deploy")
    taker = lock.acquire(_aws(), "deploy", now=stale.holder.expires + timedelta(seconds=1))
    stale.release()  # If-Match its ETag: 412, the taker's lock stays
    assert _document(s3)["since"] == taker.holder.since.isoformat()


@in_child
@mock_aws
def test_the_lock_is_released_however_the_block_ends_and_renewed_as_progress_comes(credentials, monkeypatch):
    seen = []
    with pytest.raises(KeyboardInterrupt):
        with lock.held(_aws(), "restore", seen.append) as progress:
            progress("first")  # well within RENEW_EVERY: not renewed
            assert len(_versions(_aws().s3)) == 1
            monkeypatch.setattr(lock, "RENEW_EVERY", 0.0)  # as if RENEW_EVERY had passed
            progress("second")  # renewed first
            assert len(_versions(_aws().s3)) == 2
            raise KeyboardInterrupt
    assert seen == ["first", "second"]
    assert _versions(_aws().s3) == []


def _stubbed():
    """Aws with Stubbers on S3 and STS (a bucket that exists: HeadBucket answers)."""
    aws = Aws(ENV, boto3.Session(region_name=ENV.region, aws_access_key_id="x", aws_secret_access_key="x"))
    for service in ("s3", "sts"):
        aws.__dict__[service] = boto3.client(service, region_name=ENV.region, aws_access_key_id="x",
                                             aws_secret_access_key="x", endpoint_url=f"https://{service}.invalid")
    s3, sts = Stubber(aws.s3), Stubber(aws.sts)
    sts.add_response("get_caller_identity", {"UserId": "AIDA", "Account": ENV.account_id,
                                             "Arn": f"arn:aws:iam::{ENV.account_id}:user/ci"}, {})
    s3.add_response("head_bucket", {}, {"Bucket": BUCKET})
    return aws, s3, sts


def _put(s3: Stubber, condition: dict, error: tuple[str, int] | None = None) -> None:
    expected = {"Bucket": BUCKET, "Key": KEY, "Body": ANY, "ContentType": "application/json", **condition}
    if error:
        s3.add_client_error("put_object", error[0], "At least one of the pre-conditions you specified did not hold"
                            if error[1] == 412 else "A conflicting conditional operation is currently in progress",
                            error[1], expected_params=expected)
    else:
        s3.add_response("put_object", {"ETag": '"e2"', "VersionId": "v2"}, expected)


def _get(s3: Stubber, holder: lock.Holder, etag: str) -> None:
    body = json.dumps(holder.as_dict()).encode()
    s3.add_response("get_object", {"Body": StreamingBody(BytesIO(body), len(body)), "ETag": etag, "VersionId": "v"},
                    {"Bucket": BUCKET, "Key": KEY})


def test_a_write_racing_another_is_retried_and_a_live_holder_refuses():
    """409 ConditionalRequestConflict: "you should retry the upload" (API_PutObject.html); then
    412 PreconditionFailed: the key exists, its holder is read and named."""
    aws, s3, sts = _stubbed()
    _put(s3, {"IfNoneMatch": "*"}, ("ConditionalRequestConflict", 409))
    s3.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404,
                        expected_params={"Bucket": BUCKET, "Key": KEY})  # the racer released it meanwhile
    _put(s3, {"IfNoneMatch": "*"}, ("PreconditionFailed", 412))
    holder = lock.Holder("arn:aws:iam::123456789012:user/other", "ci-7", 99, "destroy",
                         datetime.now(timezone.utc), datetime.now(timezone.utc) + lock.LEASE)
    _get(s3, holder, '"e1"')
    with s3, sts, pytest.raises(lock.Locked) as refused:
        lock.acquire(aws, "deploy")
    s3.assert_no_pending_responses()
    assert refused.value.holder == holder


def test_an_expired_lock_is_replaced_only_if_its_etag_is_unchanged():
    """Two takers of one expired lock: If-Match the ETag read, so the second gets 412 and reads
    the first taker's live lock."""
    aws, s3, sts = _stubbed()
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    expired = lock.Holder("arn:aws:iam::123456789012:user/gone", "ci-1", 7, "deploy", now - timedelta(hours=3),
                          now - timedelta(hours=2))
    winner = lock.Holder("arn:aws:iam::123456789012:user/fast", "ci-2", 8, "deploy", now, now + lock.LEASE)
    _put(s3, {"IfNoneMatch": "*"}, ("PreconditionFailed", 412))
    _get(s3, expired, '"e-old"')
    _put(s3, {"IfMatch": '"e-old"'}, ("PreconditionFailed", 412))  # the other taker was first
    _put(s3, {"IfNoneMatch": "*"}, ("PreconditionFailed", 412))
    _get(s3, winner, '"e-new"')
    with s3, sts, pytest.raises(lock.Locked) as refused:
        lock.acquire(aws, "deploy", now=now)
    s3.assert_no_pending_responses()
    assert refused.value.holder == winner


@pytest.mark.parametrize("change", [{"kind": "another-tools-lock"}, {"expires": "2026-01-02T13:00:00"}],
                         ids=["another kind", "expires without a time zone"])
def test_a_document_k3s_infra_did_not_write_is_no_holder(change):
    """Holder.parse: None unless the object is a k3s-infra-lock document whose times carry their
    offset (it writes UTC ISO 8601 with +00:00; expiry is judged against the reader's clock)."""
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    holder = lock.Holder("arn:aws:iam::123456789012:user/ci", "ci-1", 7, "deploy", now, now + lock.LEASE)
    assert lock.Holder.parse(json.dumps(holder.as_dict()).encode()) == holder
    assert lock.Holder.parse(json.dumps({**holder.as_dict(), **change}).encode()) is None


@pytest.mark.parametrize("size, whole", [(64 * 1024, True), (64 * 1024 + 1, False)])
def test_the_lock_object_is_read_up_to_64_kib_only(size, whole):
    """Whoever may write the bucket may put any object at the lock's key: at most 64 KiB of it
    is read (a lock document is a few hundred bytes); one cut short is an unreadable lock, which
    only --force-unlock removes."""
    aws, s3, sts = _stubbed()
    now = datetime.now(timezone.utc)
    holder = lock.Holder("arn:aws:iam::123456789012:user/other", "ci-7", 99, "deploy", now, now + lock.LEASE)
    text = json.dumps(holder.as_dict())
    body = (text[:-1] + " " * (size - len(text)) + "}").encode()  # the same document, padded with blanks
    assert len(body) == size
    _put(s3, {"IfNoneMatch": "*"}, ("PreconditionFailed", 412))
    s3.add_response("get_object", {"Body": StreamingBody(BytesIO(body), size), "ETag": '"e1"', "VersionId": "v"},
                    {"Bucket": BUCKET, "Key": KEY})
    with s3, sts, pytest.raises(lock.Locked) as refused:
        lock.acquire(aws, "deploy", now=now)
    s3.assert_no_pending_responses()
    assert refused.value.holder == (holder if whole else None)


def test_a_lock_that_keeps_changing_hands_is_given_up_with_a_clear_error():
    """Each attempt finds a lock (412) that is released before it can be read (NoSuchKey), and
    so once more after the last: no holder to name, a run to start again."""
    aws, s3, sts = _stubbed()
    for _ in range(lock.ATTEMPTS):
        _put(s3, {"IfNoneMatch": "*"}, ("PreconditionFailed", 412))
        s3.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404,
                            expected_params={"Bucket": BUCKET, "Key": KEY})
    s3.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404,
                        expected_params={"Bucket": BUCKET, "Key": KEY})
    with s3, sts, pytest.raises(DeployError, match="kept changing hands; run this again"):
        lock.acquire(aws, "deploy")
    s3.assert_no_pending_responses()
