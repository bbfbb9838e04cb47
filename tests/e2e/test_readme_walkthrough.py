"""The README's quick start and emulator walkthrough, run as written (issue 26): the fenced sh
block after each ``<!-- run-by-test: NAME -->`` marker, every line through one shell (so
``eval`` and exports carry on), against the emulator `k3s-infra emulator start` runs, in a
temporary HOME and working folder. Deploy and destroy ask on the terminal (a pseudo-terminal
here) and are answered "y". Each command must exit 0, and after each the emulator's state is
checked with the test's own clients: the seeded VPC chosen by init, stacks there after deploy
and gone after destroy, the kubeconfig file private and naming an API load balancer.

Only the test process's environment is set, never the commands: K3S_INFRA_CACHE holds a
stand-in K3s release (no test reaches GitHub: tests/support/k3s_release.py) and
K3S_INFRA_EMULATOR_PORT=0 lets the emulator take any free port."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
import yaml

from k3s_infra.config import read_document
from tests.support.k3s_release import write_release

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MARKER = re.compile(r"<!-- run-by-test: (?P<name>[\w-]+) -->\s*\n```(?:sh|shell|bash)\n(?P<body>.*?)\n```", re.S)
INSTALL = re.compile(r"^(pipx?|python3? -m pip) ")
# The extra an install line in each block must name (README: the emulator needs its extra).
EXTRAS = {"quickstart": None, "emulator": "[emulator]"}
K3S_API_PORT = 6443  # https://docs.k3s.io/installation/requirements (inbound rules: 6443 K3s supervisor and API)
KEYS = "testing"
STEP_TIMEOUT = 60


def blocks(text: str) -> dict[str, list[str]]:
    """Marker name -> the block's command lines: comments and blank lines dropped."""
    found = {}
    for match in MARKER.finditer(text):
        lines = [re.sub(r"\s{2,}#.*$", "", line).strip() for line in match["body"].splitlines()]
        found[match["name"]] = [line for line in lines if line and not line.startswith("#")]
    return found


@pytest.fixture(scope="module")
def readme() -> Path:
    return README


def test_readme_marks_both_blocks(readme):
    found = blocks(readme.read_text(encoding="utf-8"))
    assert found.get("quickstart") and found.get("emulator"), f"{readme}: markers missing"
    assert found["emulator"][0] == "k3s-infra emulator start" and found["emulator"][-1] == "k3s-infra emulator stop"
    assert 'eval "$(k3s-infra emulator env)"' in found["emulator"]


@pytest.fixture(scope="module")
def k3s_cache(tmp_path_factory) -> Path:
    """A stand-in release of the default K3s version, as an earlier download leaves it."""
    cache = tmp_path_factory.mktemp("k3s-cache")
    version = read_document(REPO / "environments" / "defaults.yaml")["k3s"]["version"]
    write_release(cache / "k3s" / version)
    return cache


@pytest.fixture
def user(tmp_path, k3s_cache) -> dict:
    """A new user's shell: a fresh HOME, no AWS settings, k3s-infra on PATH."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "k3s-infra").exists(), f"the console script is not installed in {bin_dir}"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "K3S_INFRA_", "XDG_", "KUBECONFIG"))}
    env |= {"HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "TERM": "dumb",
            "K3S_INFRA_CACHE": str(k3s_cache), "K3S_INFRA_EMULATOR_PORT": "0", "AWS_EC2_METADATA_DISABLED": "true"}
    yield {"env": env, "home": home, "work": work}
    # whatever happened, no emulator outlives the test
    subprocess.run([str(bin_dir / "k3s-infra"), "emulator", "stop"], env=env, cwd=work, capture_output=True,
                   timeout=30)


class Shell:
    """/bin/sh running a script on a pseudo-terminal: after each command it prints its exit
    status and waits for a line, so the test checks the state in between; "[y/N]" is answered y."""

    STEP = re.compile(rb"@@step (\d+) exit (\d+)@@")

    def __init__(self, commands: list[str], env: dict, cwd: Path):
        script = cwd.parent / "walkthrough.sh"
        lines = ['step() { printf "\\n@@step %s exit %s@@\\n" "$1" "$2"; read -r _; }']
        lines += [f"{command}\nstep {index} $?" for index, command in enumerate(commands)]
        script.write_text("\n".join(lines) + "\n")
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(["/bin/sh", str(script)], stdin=slave, stdout=slave, stderr=slave,
                                        cwd=cwd, env=env, start_new_session=True)
        os.close(slave)
        self.output = b""
        self.answered = 0

    def step(self, index: int) -> tuple[int, str]:
        """Wait for command ``index`` to end: its exit status and what it wrote."""
        start, deadline = len(self.output), time.monotonic() + STEP_TIMEOUT
        while not (match := self.STEP.search(self.output, start)):
            assert time.monotonic() < deadline, f"step {index} did not end in {STEP_TIMEOUT} s:\n{self.text(start)}"
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                with contextlib.suppress(OSError):  # EIO: the shell is gone
                    self.output += os.read(self.master, 65536)
            if self.output.count(b"[y/N]") > self.answered:  # cli/aws.py ask(): deploy, destroy
                self.answered += 1
                os.write(self.master, b"y\n")
            assert self.process.poll() is None or self.STEP.search(self.output, start), \
                f"the shell ended before step {index}:\n{self.text(start)}"
        assert int(match[1]) == index
        return int(match[2]), self.text(start, match.start())

    def resume(self) -> None:
        os.write(self.master, b"\n")

    def text(self, start: int, end: int | None = None) -> str:
        return self.output[start:end].decode(errors="replace").replace("\r\n", "\n")

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the shell and a command still running in it
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        os.close(self.master)


def emulator(user: dict):
    """The test's own EC2/CloudFormation/ELB view of the running emulator (its record's port)."""
    record = json.loads((user["home"] / ".cache" / "k3s-infra" / "emulator.json").read_text())
    session = boto3.Session(aws_access_key_id=KEYS, aws_secret_access_key=KEYS, region_name=record["region"])
    endpoint = f"http://127.0.0.1:{record['port']}"
    return lambda service: session.client(service, endpoint_url=endpoint)


def _private_subnets(client) -> dict[str, set[str]]:
    """VPC -> its subnets whose route table sends 0.0.0.0/0 to a NAT gateway (the test's own reading)."""
    found: dict[str, set[str]] = {}
    for table in client("ec2").describe_route_tables()["RouteTables"]:
        if any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId") for r in table["Routes"]):
            subnets = {a["SubnetId"] for a in table.get("Associations", []) if a.get("SubnetId")}
            found.setdefault(table["VpcId"], set()).update(subnets)
    return found


def _live_stacks(client) -> list[str]:
    summaries = client("cloudformation").list_stacks()["StackSummaries"]
    return [s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"]


def check(command: str, user: dict) -> None:
    """The state a command of the walkthrough must leave (by its words)."""
    words = command.split()
    if words[:3] == ["k3s-infra", "emulator", "stop"]:
        assert not (user["home"] / ".cache" / "k3s-infra" / "emulator.json").exists()
        return
    if words[:2] != ["k3s-infra", "emulator"] and words[:1] == ["k3s-infra"]:
        name = words[words.index("--env") + 1] if "--env" in words else words[2]
        client = emulator(user)
        if words[1] == "init":
            network = yaml.safe_load((user["work"] / "environments" / f"{name}.yaml").read_text())["network"]
            if "--managed-network" in words:
                assert "create" in network and "vpc_id" not in network
            else:  # the seeded VPC and its private subnets (routed through the NAT gateway)
                private = _private_subnets(client)
                assert network["vpc_id"] in private
                assert {s["id"] for s in network["subnets"]} == private[network["vpc_id"]]
        elif words[1] == "render":
            assert (user["work"] / "build" / name / "root.yaml").exists()  # build/<environment>/ by default
        elif words[1] == "deploy":
            assert _live_stacks(client), "deploy left no stack"
        elif words[1] == "destroy":
            assert _live_stacks(client) == []
        elif words[1] == "kubeconfig":
            path = user["work"] / f"{name}.kubeconfig"  # the default: ./<environment>.kubeconfig
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            doc = yaml.safe_load(path.read_text())
            server = urlparse(doc["clusters"][0]["cluster"]["server"])
            names = {b["DNSName"].lower() for b in client("elbv2").describe_load_balancers()["LoadBalancers"]}
            assert server.scheme == "https" and server.hostname in names and server.port == K3S_API_PORT
            assert "stand-in" in path.read_text()  # and it says it is one


def walk(commands: list[str], user: dict, extra: str | None) -> list[str]:
    """Run ``commands`` as written (install lines only checked); returns the commands run."""
    run = []
    for command in commands:
        if INSTALL.match(command):
            assert extra is None or extra in command, f"{command!r} does not install the {extra} extra"
        else:
            run.append(command)
    shell = Shell(run, user["env"], user["work"])
    try:
        for index, command in enumerate(run):
            status, output = shell.step(index)
            assert status == 0, f"`{command}` exited {status}:\n{output}"
            check(command, user)
            shell.resume()
        assert shell.process.wait(timeout=30) == 0
    finally:
        shell.close()
    return run


def test_emulator_walkthrough_runs_as_written(readme, user):
    commands = blocks(readme.read_text(encoding="utf-8"))["emulator"]
    run = walk(commands, user, EXTRAS["emulator"])
    assert sum(c.startswith("k3s-infra deploy") for c in run) >= 2  # the seeded VPC and a managed network


def test_quick_start_runs_as_written_against_the_emulator(readme, user):
    """The quick start is for an AWS account; here the emulator plays it (started as the
    walkthrough starts it), so the same lines run after its exports."""
    commands = blocks(readme.read_text(encoding="utf-8"))["quickstart"]
    setup = ["k3s-infra emulator start", 'eval "$(k3s-infra emulator env)"']
    run = walk(setup + commands + ["k3s-infra emulator stop"], user, EXTRAS["quickstart"])
    steps = ["init", "render", "plan", "deploy", "kubeconfig", "destroy"]  # issue 26: the quick start's order
    assert [c.split()[1] for c in run[2:-1] if c.split()[1] in steps] == steps


def test_the_harness_answers_prompts_and_stops_at_a_failing_line(user):
    """The runner itself: a "[y/N]" question is answered y, a non-zero exit fails the test, an
    install line without the block's extra fails it."""
    ask = "python -c \"import sys; sys.exit(input('go on? [y/N] ') != 'y')\""
    assert walk([ask, "true"], user, None) == [ask, "true"]
    with pytest.raises(AssertionError, match="`false` exited 1"):
        walk(["true", "false", "true"], user, None)
    with pytest.raises(AssertionError, match=r"does not install the \[emulator\] extra"):
        walk(["pip install k3s-infra"], user, "[emulator]")
