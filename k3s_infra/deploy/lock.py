"""One deploy, destroy or restore at a time per stack: a lock object in the artifact bucket.

Why a lock and not only the stack's status: between the start of a deploy and its
ExecuteChangeSet lie minutes of packaging and change-set building while the stack is at
rest, so two deploys started together both build a change set and both execute (the second
queues behind the first or fails half-way, and each streams the other's events); restore
changes the server groups with no stack operation at all. The lock is taken first and says
who holds it. The status check right before ExecuteChangeSet (stack_states.check_executable)
stays: it stops what the lock cannot, an operation started outside k3s-infra.

How (S3 conditional writes, https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html;
API_PutObject.html): PutObject with ``If-None-Match: *`` creates the lock only where none
exists: S3 answers 412 PreconditionFailed when one does, 409 ConditionalRequestConflict to a
write racing another (retried, as the reference says). The object names who (the caller's
ARN from STS GetCallerIdentity), the host, pid, command, since and expires. The holder renews
it (``If-Match`` its ETag) while the operation reports progress; a holder that died leaves it
to expire after LEASE, when the next one replaces it (``If-Match`` the ETag it read, so only
one taker wins) with a warning; ``--force-unlock`` removes it at once. It is released however
the command ends: the holder deletes the versions it wrote by VersionId (the bucket is
versioned: a plain delete would leave a delete marker over the superseded versions), or, in
a bucket without versioning, the object while its ETag is still the holder's
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
Expiry is judged by the reader's clock: skew of minutes is small beside an hour's lease."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from k3s_infra.deploy import DeployError
from k3s_infra.deploy.package import ensure_bucket
from k3s_infra.deploy.progress import Deleting, Executing, Message, Progress, ignore
from k3s_infra.model import naming

# The messages said right before an irreversible step: the lock is confirmed there (Lock.renewing).
CHECKPOINTS = (Executing, Deleting)

KIND = "k3s-infra-lock"
# Longer than any silent stretch of an operation (a change set may build for 30 minutes
# without a progress report), short enough that a lock left by a killed run clears itself.
LEASE = timedelta(hours=1)
RENEW_EVERY = 300.0  # seconds: renewed at the first progress report after this
ATTEMPTS = 3  # another writer raced (409, or the lock was released or replaced between two calls)
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")
_GONE = ("NoSuchBucket", "NoSuchKey", "NoSuchVersion", "PreconditionFailed")
_FAILURES = (ClientError, BotoCoreError, ResponseParserError)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Holder:
    """What the lock object says (its JSON document)."""
    who: str      # the caller's ARN
    host: str
    pid: int
    command: str  # deploy | destroy | restore
    since: datetime
    expires: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "version": 1, "who": self.who, "host": self.host, "pid": self.pid,
                "command": self.command, "since": self.since.isoformat(), "expires": self.expires.isoformat()}

    @classmethod
    def parse(cls, body: bytes) -> Holder | None:
        """None: not a lock document k3s-infra wrote."""
        try:
            data = json.loads(body)
            holder = cls(str(data["who"]), str(data["host"]), int(data["pid"]), str(data["command"]),
                         datetime.fromisoformat(data["since"]), datetime.fromisoformat(data["expires"]))
        except (ValueError, KeyError, TypeError):
            return None
        return holder if data.get("kind") == KIND and holder.expires.tzinfo is not None else None

    def describe(self) -> str:
        return f"{self.command} by {self.who} on {self.host} (pid {self.pid}) since {self.since:%Y-%m-%d %H:%M:%S} UTC"


class Locked(DeployError):
    """Another run holds the lock (exit 1): who, since when, until when."""

    def __init__(self, stack_name: str, where: str, holder: Holder | None):
        self.holder, self.where = holder, where
        held = f"{holder.describe()}, lock expires {holder.expires:%Y-%m-%d %H:%M:%S} UTC" if holder else \
            "an unreadable lock object"
        super().__init__(f"stack {stack_name} is locked: {held} ({where}); wait for it to end, or, if it no longer "
                         f"runs, pass --force-unlock")


@dataclass(frozen=True)
class LockTakenOver(Message):
    """An expired lock replaced: its holder stopped without releasing it (killed, lost)."""
    holder: Holder
    where: str


@dataclass(frozen=True)
class LockRemoved(Message):
    """--force-unlock removed the lock (``holder`` None: there was none, or it was unreadable)."""
    holder: Holder | None
    existed: bool
    where: str


@dataclass(frozen=True)
class LockLost(Message):
    """A renewal found the lock replaced or removed: another run may now start."""
    where: str


@dataclass(frozen=True)
class LockNotReleased(Message):
    """The release failed: the lock stays until it expires or --force-unlock removes it."""
    where: str
    problem: str


@dataclass
class Lock:
    s3: Any
    bucket: str
    key: str
    holder: Holder
    etag: str
    versions: list[str | None]  # each version this holder wrote (None: the bucket keeps no versions)
    renewed: float = field(default_factory=time.monotonic)
    lost: bool = False

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def renewing(self, on_progress: Progress) -> Progress:
        """``on_progress`` that renews the lock first when RENEW_EVERY has passed, and before
        an irreversible step (CHECKPOINTS) confirms it is still this holder's or raises: a
        prompt left open past the lease may have let another run take it over."""
        def report(message: Message) -> None:
            if isinstance(message, CHECKPOINTS):
                self.renew(on_progress, strict=True)
            elif not self.lost and time.monotonic() - self.renewed >= RENEW_EVERY:
                self.renew(on_progress)
            on_progress(message)
        report.confirm_held = lambda: self.renew(on_progress, strict=True)  # type: ignore[attr-defined]
        return report

    def renew(self, on_progress: Progress = ignore, now: datetime | None = None, *, strict: bool = False) -> None:
        holder = replace(self.holder, expires=(now or _now()) + LEASE)
        try:
            written = _put(self.s3, self.bucket, self.key, holder, IfMatch=self.etag)
        except _FAILURES as exc:
            if strict:
                raise DeployError(f"could not confirm the lock {self.where} before going on ({exc}); "
                                  "nothing was executed") from None
            return  # again at the next report: the lease has room for many
        self.renewed = time.monotonic()
        if written is None:
            self.lost = True
            if strict:
                raise DeployError(f"the lock {self.where} was taken over by another run while this one waited; "
                                  "nothing was executed (k3s-infra status shows what the other run does)")
            on_progress(LockLost(self.where))
            return
        self.holder, (self.etag, version) = holder, written
        self.versions.append(version)

    def release(self, on_progress: Progress = ignore) -> None:
        try:
            if None in self.versions:  # no versioning: the object, only while it is still this holder's
                self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
            else:
                answer = self.s3.delete_objects(Bucket=self.bucket, Delete={"Quiet": True, "Objects": [
                    {"Key": self.key, "VersionId": version} for version in dict.fromkeys(self.versions)]})
                failed = [e for e in answer.get("Errors", []) if e.get("Code") not in _GONE]
                if failed:
                    on_progress(LockNotReleased(self.where, f"{failed[0].get('Code')}: {failed[0].get('Message')}"))
        except ClientError as exc:
            if _code(exc) not in _GONE:  # gone with destroy's cleanup, or another run's by now
                on_progress(LockNotReleased(self.where, str(exc)))
        except (BotoCoreError, ResponseParserError) as exc:
            on_progress(LockNotReleased(self.where, str(exc)))


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _put(s3, bucket: str, key: str, holder: Holder, **condition: str) -> tuple[str, str | None] | None:
    """(ETag, VersionId) of the lock written, or None when the condition did not hold."""
    try:
        answer = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(holder.as_dict()).encode(),
                               ContentType="application/json", **condition)
    except ClientError as exc:
        if _code(exc) in _LOST_RACE:
            return None
        raise
    return answer["ETag"], answer.get("VersionId")


def _read(s3, bucket: str, key: str) -> tuple[Holder | None, str, str | None] | None:
    """(holder, ETag, VersionId) of the lock there now, or None when there is none."""
    try:
        found = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    return Holder.parse(found["Body"].read(65536)), found["ETag"], found.get("VersionId")


def _purge(s3, bucket: str, key: str, keep: tuple[str | None, ...] = ()) -> None:
    """Delete every version and delete marker of ``key`` but ``keep``."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        doomed = [{"Key": key, "VersionId": v["VersionId"]} for v in page.get("Versions", []) +
                  page.get("DeleteMarkers", []) if v["Key"] == key and v["VersionId"] not in keep]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Quiet": True, "Objects": doomed})


def acquire(aws, command: str, *, force: bool = False, on_progress: Progress = ignore,
            now: datetime | None = None) -> Lock:
    """The lock of ``aws.env``'s stack for ``command``, or Locked naming its holder. ``force``
    (--force-unlock) removes whatever lock there is first."""
    env, s3 = aws.env, aws.s3
    bucket, key = env.artifact_bucket, naming.lock_key(env)
    where = f"s3://{bucket}/{key}"
    ensure_bucket(s3, bucket, env.region, naming.cluster_tags(env))
    now = now or _now()
    me = Holder(aws.sts.get_caller_identity()["Arn"], socket.gethostname(), os.getpid(), command, now, now + LEASE)
    if force:
        found = _read(s3, bucket, key)
        _purge(s3, bucket, key)
        on_progress(LockRemoved(found[0] if found else None, found is not None, where))
    for _ in range(ATTEMPTS):
        written = _put(s3, bucket, key, me, IfNoneMatch="*")
        if written:
            return Lock(s3, bucket, key, me, written[0], [written[1]])
        found = _read(s3, bucket, key)
        if found is None:
            continue  # released meanwhile
        holder, etag, _ = found
        if holder is None or holder.expires > now:
            raise Locked(env.stack_name, where, holder)
        written = _put(s3, bucket, key, me, IfMatch=etag)
        if written:
            on_progress(LockTakenOver(holder, where))
            if written[1] is not None:  # the expired holder's versions would resurface when this one is released
                try:
                    _purge(s3, bucket, key, keep=(written[1],))
                except _FAILURES:
                    pass  # then the next taker finds an expired lock again: a warning, no harm
            return Lock(s3, bucket, key, me, written[0], [written[1]])
    found = _read(s3, bucket, key)
    if found is None:  # taken and released again between each of this run's attempts
        raise DeployError(f"the lock of stack {env.stack_name} ({where}) kept changing hands; run this again")
    raise Locked(env.stack_name, where, found[0])


@contextmanager
def held(aws, command: str, on_progress: Progress = ignore, *, force: bool = False) -> Iterator[Progress]:
    """Hold the lock while the block runs (released however it ends); yields ``on_progress``
    that renews it."""
    lock = acquire(aws, command, force=force, on_progress=on_progress)
    try:
        yield lock.renewing(on_progress)
    finally:
        lock.release(on_progress)
