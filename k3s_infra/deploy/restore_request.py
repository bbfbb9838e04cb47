"""The restore request: the value ``k3s-infra restore`` writes to the SSM parameter
``naming.restore_request_parameter(env)`` and the first server's boot (bootstrap/boot.sh)
parses in bash. One line, single spaces, the fields in this order:

    snapshot=<snapshot name> replaces=<instance-id>[,<instance-id>...] expires=<unix epoch seconds>

``replaces`` lists the first-server instances the restore terminates, ``expires`` is the
time of writing plus the restore's timeout. The boot acts on it only while it has not
expired, when the booting instance replaces one of the listed ones, no API answers and no
API target is healthy; otherwise it logs it and leaves it. Earlier releases wrote the bare
snapshot name: ``parse`` reads that as a legacy request (no instances, no expiry)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

# K3s names snapshots <prefix>-<node>-<unix time>[.zip]; kept to characters that need no
# quoting in bash, so the boot can split the line on spaces, '=' and ','.
SNAPSHOT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:@-]{0,254}")
INSTANCE = re.compile(r"i-[0-9a-f]{8}(?:[0-9a-f]{9})?")  # short (8) and long (17) instance IDs
EXPIRES = re.compile(r"[1-9][0-9]{0,11}")
FIELDS = ("snapshot", "replaces", "expires")
DESCRIPTION = "k3s-infra restore: the snapshot a replacing first server restores, and until when"


class RestoreRequestError(ValueError):
    """Text that is not a restore request (or a request that cannot be written)."""


def check_snapshot(name: str) -> str:
    if not SNAPSHOT.fullmatch(name):
        raise RestoreRequestError(f"snapshot name {name[:80]!r} cannot go into a restore request: letters, "
                                  f"digits and . _ + : @ - only (at most 255, starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class RestoreRequest:
    snapshot: str
    replaces: tuple[str, ...]  # empty only in a legacy request
    expires: int               # unix epoch seconds; 0 only in a legacy request

    def __post_init__(self) -> None:
        check_snapshot(self.snapshot)
        bad = [i for i in self.replaces if not isinstance(i, str) or not INSTANCE.fullmatch(i)]
        if bad:
            raise RestoreRequestError(f"not instance IDs: {', '.join(map(repr, bad))}")
        if len(set(self.replaces)) != len(self.replaces):
            raise RestoreRequestError(f"an instance is listed twice in {','.join(self.replaces)}")
        if type(self.expires) is not int or self.expires < 0:
            raise RestoreRequestError(f"expires must be unix epoch seconds, not {self.expires!r}")
        if bool(self.replaces) != bool(self.expires):
            raise RestoreRequestError("a request names the instances it replaces and when it expires, both or "
                                      "neither (legacy)")

    @property
    def legacy(self) -> bool:
        """Written by an earlier release: the bare snapshot name, no guard."""
        return not self.replaces

    def format(self) -> str:
        if self.legacy:
            return self.snapshot
        return f"snapshot={self.snapshot} replaces={','.join(self.replaces)} expires={self.expires}"


def new(snapshot: str, replaces: tuple[str, ...], now: float, timeout: float) -> RestoreRequest:
    """The request a restore writes at ``now``, valid for its ``timeout`` (seconds)."""
    if not replaces:
        raise RestoreRequestError("a restore request needs at least one instance it replaces")
    return RestoreRequest(snapshot, tuple(replaces), math.ceil(now + timeout))


def parse(text: str) -> RestoreRequest:
    """The request in ``text`` (exactly the line ``format`` writes, or a legacy bare name)."""
    if not text:
        raise RestoreRequestError("empty restore request")
    if "=" not in text and not any(c.isspace() for c in text):
        return RestoreRequest(check_snapshot(text), (), 0)  # legacy: the bare snapshot name
    fields = text.split(" ")
    keys = tuple(field.partition("=")[0] for field in fields)
    if keys != FIELDS or any("=" not in field for field in fields):
        raise RestoreRequestError(f"expected 'snapshot=<name> replaces=<instance-id>[,...] expires=<epoch "
                                  f"seconds>' (single spaces, that order), got {text[:200]!r}")
    snapshot, replaces, expires = (field.partition("=")[2] for field in fields)
    if not EXPIRES.fullmatch(expires):
        raise RestoreRequestError(f"expires={expires[:40]!r} is not unix epoch seconds")
    ids = tuple(replaces.split(","))
    if not replaces or not all(INSTANCE.fullmatch(i) for i in ids):
        raise RestoreRequestError(f"replaces={replaces[:200]!r} is not a comma-separated list of instance IDs")
    return RestoreRequest(snapshot, ids, int(expires))


# --- in SSM ---------------------------------------------------------------------------

State = Literal["pending", "expired", "legacy", "malformed"]
Withdrawal = Literal["deleted", "absent", "replaced", "failed"]


@dataclass(frozen=True)
class Pending:
    """A request found in the parameter at ``now`` (epoch seconds)."""
    parameter: str
    region: str
    value: str
    now: int
    request: RestoreRequest | None  # None: malformed (``problem`` says why)
    problem: str | None = None

    @property
    def state(self) -> State:
        if self.request is None:
            return "malformed"
        if self.request.legacy:
            return "legacy"
        return "expired" if self.request.expires <= self.now else "pending"

    @property
    def expires_in(self) -> int | None:
        """Seconds until it expires (negative: since it expired); None without an expiry."""
        return None if self.request is None or self.request.legacy else self.request.expires - self.now

    def as_dict(self) -> dict[str, Any]:
        """The ``restore_request`` field of status's JSON document."""
        request = self.request
        expires = None if self.expires_in is None else datetime.fromtimestamp(request.expires, timezone.utc)
        return {"parameter": self.parameter, "value": self.value, "state": self.state,
                "snapshot": request.snapshot if request else None,
                "replaces": list(request.replaces) if request else [],
                "expires": expires, "expires_in": self.expires_in, "problem": self.problem}


def read(ssm, parameter: str, now: float) -> Pending | None:
    """The request in ``parameter``, or None when there is none; other errors raise."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    region = ssm.meta.region_name
    try:
        return Pending(parameter, region, value, int(now), parse(value))
    except RestoreRequestError as exc:
        return Pending(parameter, region, value, int(now), None, str(exc))


def withdraw(ssm, parameter: str, request: RestoreRequest) -> tuple[Withdrawal, str | None]:
    """Delete ``parameter`` if it still holds ``request`` (never another run's request).
    Returns the outcome and, for "failed", the error."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        if value != request.format():
            return "replaced", None
        ssm.delete_parameter(Name=parameter)  # SSM has no conditional delete: read, compare, delete
        return "deleted", None
    except ssm.exceptions.ParameterNotFound:
        return "absent", None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return "failed", f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}"
    except BotoCoreError as exc:
        return "failed", str(exc)
