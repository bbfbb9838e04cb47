"""k3s-infra emulator start | env | stop | serve: an AWS emulator on this machine (moto with this
project's shims, seeded with a VPC routed like AWS) for trying every command without an account.

``start`` runs ``serve`` as a detached process and waits until it is seeded; ``serve`` runs it in
the foreground (Ctrl-C stops it). The running one is recorded in the cache folder
(k3s_infra/emulator/state.py), which ``env`` and ``stop`` read. ``start`` and ``serve`` print
shell text only (``#`` comments and exports), so their output can be ``eval``ed too."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from k3s_infra.cli import EXIT_OK, AwsFailure, UsageError, region_override
from k3s_infra.cli.arguments import port_number
from k3s_infra.cli.output import say
from k3s_infra.emulator import MOTO_VERSION, MissingExtra, require, state

DEFAULT_PORT = 5000
PORT_VARIABLE = "K3S_INFRA_EMULATOR_PORT"  # the default of --port where 5000 is taken for good
DEFAULT_REGION = "eu-west-1"
START_TIMEOUT = 60.0  # seconds for the emulator to serve and be seeded
STOP_TIMEOUT = 15.0


def run(args: argparse.Namespace) -> int:
    return {"start": start, "serve": serve, "env": env, "stop": stop}[args.action](args)


def start(args: argparse.Namespace) -> int:
    port, region = _settings(args)
    log = state.log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "k3s_infra", "emulator", "serve", "--port", str(port), "--region", region],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
            start_new_session=True)  # its own session: closing this terminal does not stop it
    deadline = time.monotonic() + START_TIMEOUT
    while (running := state.read()) is None or running.pid != child.pid:
        if child.poll() is not None:
            raise AwsFailure(f"the emulator did not start: {_last_line(log)} (log: {log})")
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            raise AwsFailure(f"the emulator did not start within {START_TIMEOUT:.0f} s (log: {log})")
        time.sleep(0.1)
    for line in _description(running, log=str(log)):
        say(line)
    return EXIT_OK


def serve(args: argparse.Namespace) -> int:
    port, region = _settings(args)
    from k3s_infra.emulator import server  # moto: only once the extra is known to be there

    # The seeding client takes the dummy keys; a profile named in this shell must not be read.
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    try:
        serving = server.serve(port, region)
    except OSError as exc:
        raise UsageError(f"--port {port}: {exc.strerror or exc}; pass another --port") from None
    except ValueError as exc:  # seed.network: a region without two zones
        raise UsageError(f"--region: {exc}") from None
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    running = state.Running(os.getpid(), serving.port, region, serving.network.as_dict())
    try:
        state.write(running)
        for line in _description(running):
            say(line)
        say("# serving until Ctrl-C (or `k3s-infra emulator stop`)")
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    finally:
        state.remove(running.pid)
        serving.stop()
    say("# stopped")
    return EXIT_OK


def env(args: argparse.Namespace) -> int:
    running = _running()
    if running is None:
        raise AwsFailure("no emulator is running; start one with `k3s-infra emulator start`")
    for line in running.exports():
        say(line)
    return EXIT_OK


def stop(args: argparse.Namespace) -> int:
    running = _running()
    if running is None:
        say("no emulator is running")
        return EXIT_OK
    with contextlib.suppress(ProcessLookupError):
        os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while state.alive(running.pid):
        if time.monotonic() > deadline:
            raise AwsFailure(f"the emulator (pid {running.pid}) did not stop within {STOP_TIMEOUT:.0f} s")
        time.sleep(0.1)
    state.remove(running.pid)
    say(f"stopped the emulator on {running.endpoint} (pid {running.pid}); its AWS resources are gone")
    say("  this shell still points at it: unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY")
    return EXIT_OK


def _running() -> state.Running | None:
    """The recorded emulator if its process still runs; a stale record is removed."""
    running = state.read()
    if running is not None and not state.alive(running.pid):
        state.remove(running.pid)
        return None
    return running


def _settings(args: argparse.Namespace) -> tuple[int, str]:
    """Check everything before anything starts: the extra, no emulator running, a free port."""
    try:
        require()
    except MissingExtra as exc:
        raise UsageError(str(exc)) from None
    region = region_override(args) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") \
        or DEFAULT_REGION
    port = args.port if args.port is not None else _port_from_environment()
    running = _running()
    if running is not None:
        raise UsageError(f"an emulator is already running on {running.endpoint} (pid {running.pid}): "
                         f"`k3s-infra emulator env` prints its exports, `k3s-infra emulator stop` stops it")
    if port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise UsageError(f"port {port} on 127.0.0.1 is taken ({exc.strerror or exc}); "
                                 f"pass --port (0: any free port)") from None
    return port, region


def _port_from_environment() -> int:
    text = os.environ.get(PORT_VARIABLE)
    if text is None:
        return DEFAULT_PORT
    try:
        return port_number(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{PORT_VARIABLE}: {exc}") from None


def _description(running: state.Running, log: str | None = None) -> list[str]:
    network = running.network
    private = ", ".join(f"{s} ({z})" for s, z in network["private_subnets"])
    public = ", ".join(f"{s} ({z})" for s, z in network["public_subnets"])
    where = f"pid {running.pid}" + (f"; log {log}" if log else "")
    return [f"# k3s-infra emulator: moto {MOTO_VERSION} with k3s-infra's shims on {running.endpoint} ({where})",
            f"# seeded {running.region}: VPC {network['vpc_id']} {network['vpc_cidr']}",
            f"#   private subnets {private}: 0.0.0.0/0 through NAT gateway {network['nat_gateway']}",
            f"#   public subnets {public}: 0.0.0.0/0 through internet gateway {network['internet_gateway']}",
            f"#   S3 gateway endpoint {network['s3_endpoint']} on the private route table",
            "# no node boots here: instances report ready at once, and a stand-in for the first server",
            "#   publishes a kubeconfig naming the API load balancer, with no real credentials",
            "# use it in this shell:  eval \"$(k3s-infra emulator env)\"   stop it: k3s-infra emulator stop",
            *running.exports()]


def _last_line(log) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines[-1].strip().removeprefix("error: ") if lines else "it exited without a word"

