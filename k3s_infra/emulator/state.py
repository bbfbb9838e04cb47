"""The record of the running emulator: one JSON file in the user's cache folder
($XDG_CACHE_HOME, default ~/.cache: XDG Base Directory Specification), written by the emulator's
process once it serves and removed when it stops, so ``emulator env`` and ``emulator stop`` find
it from any shell. Imports no moto."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# moto takes any keys (its default account, 123456789012); these only satisfy botocore.
ACCESS_KEY = "testing"


def folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "k3s-infra"


def path() -> Path:
    return folder() / "emulator.json"


def log_path() -> Path:
    return folder() / "emulator.log"


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    region: str
    network: dict  # seed.Network.as_dict()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exports(self) -> list[str]:
        """Shell lines for ``eval``: the endpoint, dummy keys and the region (AWS_REGION wins over
        AWS_DEFAULT_REGION in boto3 and the AWS CLI, so both); a profile or session token of the
        shell would otherwise mix real settings in."""
        return [f"export AWS_ENDPOINT_URL={self.endpoint}",
                f"export AWS_ACCESS_KEY_ID={ACCESS_KEY}",
                f"export AWS_SECRET_ACCESS_KEY={ACCESS_KEY}",
                f"export AWS_REGION={self.region}",
                f"export AWS_DEFAULT_REGION={self.region}",
                "unset AWS_PROFILE AWS_SESSION_TOKEN"]


def read() -> Running | None:
    """The record, or None when there is none (or it is not one: a half-written file)."""
    try:
        doc = json.loads(path().read_text(encoding="utf-8"))
        return Running(int(doc["pid"]), int(doc["port"]), str(doc["region"]), dict(doc.get("network") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(running: Running) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".emulator.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(running), handle, indent=2)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(pid: int) -> None:
    """Remove the record if it is still the one of process ``pid``."""
    found = read()
    if found is None or found.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path().unlink()


def alive(pid: int) -> bool:
    """Process ``pid`` runs and is an emulator (``k3s-infra emulator serve``): a pid the system
    gave to another process since is not ours to signal."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return False
    words = _command_line(pid)
    if words is None:
        return True  # no way to tell here: the process exists
    return "emulator" in words and "serve" in words


def _command_line(pid: int) -> list[str] | None:
    """The process's arguments (Linux: /proc; elsewhere ps(1)); [] for a zombie; None if unknown."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return []  # gone meanwhile
    except OSError:
        pass
    try:
        result = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.split() if result.returncode == 0 else []
