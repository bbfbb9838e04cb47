"""What a run of the boot sandbox leaves behind (boot_sandbox.Sandbox.run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

# The bounds the node script puts on every AWS CLI call (boot_lib.sh aws: the global options
# --cli-connect-timeout and --cli-read-timeout, each with its value) and on every kubectl call
# (boot.sh kube, leave_cluster: --request-timeout=<duration>). BootRun's call lists leave them
# out, so a test compares what a call asks for; test_boot_bounds.py checks that they are there
# (raw_calls).
AWS_TIMEOUTS = ("--cli-connect-timeout", "--cli-read-timeout")
KUBECTL_TIMEOUT = "--request-timeout="


def without_bounds(program: str, args: list[str]) -> list[str]:
    """A recorded call of `program` without the node script's time bounds (AWS_TIMEOUTS with
    their values for aws, KUBECTL_TIMEOUT for `k3s kubectl`)."""
    if program == "aws":
        kept, skip = [], False
        for arg in args:
            if skip:
                skip = False
            elif arg in AWS_TIMEOUTS:
                skip = True
            else:
                kept.append(arg)
        return kept
    if program == "k3s" and args[:1] == ["kubectl"]:
        return [arg for arg in args if not arg.startswith(KUBECTL_TIMEOUT)]
    return args


def effective_config(root: Path) -> dict:
    """K3s's reading of config.yaml plus config.yaml.d/*.yaml: later keys win, 'key+' appends."""
    base = root / "etc/rancher/k3s"
    merged: dict = {}
    for path in [base / "config.yaml", *sorted((base / "config.yaml.d").glob("*.yaml"))]:
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            if key.endswith("+"):
                key = key[:-1]
                merged[key] = list(merged.get(key, [])) + list(value)
            else:
                merged[key] = value
    return merged


@dataclass
class BootRun:
    returncode: int
    stdout: str
    stderr: str
    root: Path
    logs: Path
    tmp: Path
    state: dict
    imds_requests: list
    files: dict[str, str]  # write_files path -> content
    imds_options: dict  # the MetadataOptions the metadata service followed

    @property
    def signals(self) -> list[list[str]]:
        """Every SignalResource call: [stack, logical resource, unique id, status]."""
        return self.state["signals"]

    @property
    def statuses(self) -> list[str]:
        """The status of every SignalResource call, in order."""
        return [signal[3] for signal in self.signals]

    @property
    def health_reports(self) -> list[list]:
        """Every SetInstanceHealth call: [instance, status, --no-should-respect-grace-period]."""
        return self.state["health_reports"]

    @property
    def tags(self) -> list[list[str]]:
        """Every tag CreateTags set: [resource, key, value]."""
        return self.state["tags"]

    def _lines(self, name: str) -> list:
        path = self.logs / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def raw_calls(self, program: str) -> list[list[str]]:
        """Every call of `program` exactly as made, time bounds included."""
        return self._lines(f"{program}.jsonl")

    @property
    def aws_calls(self) -> list[list[str]]:
        """Every AWS CLI call, without the time bounds every one carries (without_bounds)."""
        return [without_bounds("aws", call) for call in self._lines("aws.jsonl")]

    @property
    def curl_calls(self) -> list[list[str]]:
        return self._lines("curl.jsonl")

    @property
    def urls(self) -> list[str]:
        return [[a for a in call if a.startswith(("http://", "https://"))][-1] for call in self.curl_calls]

    @property
    def k3s_calls(self) -> list[list[str]]:
        """Every call of the K3s binary, kubectl's without its time bound (without_bounds)."""
        return [without_bounds("k3s", call) for call in self._lines("k3s.jsonl")]

    @property
    def dnf_calls(self) -> list[list[str]]:
        return self._lines("dnf.jsonl")

    @property
    def systemctl_calls(self) -> list[list[str]]:
        return self._lines("systemctl.jsonl")

    @property
    def sleep_calls(self) -> list[list[str]]:
        """Every sleep of a server's watch (recorded in watch runs only)."""
        return self._lines("sleep.jsonl")

    @property
    def sequence(self) -> list[list[str]]:
        """Every call of aws, curl, k3s and systemctl in the order made: [program, *arguments]
        (without_bounds)."""
        return [[call[0], *without_bounds(call[0], call[1:])] for call in self._lines("sequence.jsonl")]

    def position(self, *words: str) -> int:
        """Index in ``sequence`` of the first call holding every one of ``words`` (-1: none)."""
        for index, call in enumerate(self.sequence):
            if all(word in call for word in words):
                return index
        return -1

    @property
    def installed(self) -> bool:
        """The K3s binary is in place, executable, with the links the official installer makes."""
        binary = self.path("/usr/local/bin/k3s")
        if not binary.exists():
            return False
        assert binary.stat().st_mode & 0o777 == 0o755
        for link in ("kubectl", "crictl", "ctr"):
            assert self.path(f"/usr/local/bin/{link}").resolve() == binary.resolve()
        return True

    def secret_writes(self) -> list[list[str]]:
        """Every put-secret-value call as made (argument lists)."""
        return [c for c in self.aws_calls if "put-secret-value" in c]

    def secrets_read(self) -> list[str]:
        return [c[c.index("--secret-id") + 1] for c in self.aws_calls if "get-secret-value" in c]

    def config(self) -> dict:
        return effective_config(self.root)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")
