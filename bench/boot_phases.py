#!/usr/bin/env python3
"""Where a node's boot spends its time: the real boot script, phase by phase, in the sandbox
(tests/support/boot_sandbox.py), with the staged K3s files served by a local S3 stand-in (a
moto server) at a realistic size.

    python bench/boot_phases.py [--images-mb 170] [--env dev] [--json]

Every AWS call but the downloads, the instance metadata and K3s itself are the sandbox's
stubs, answering at once: what is measured is the script's own work and its waits (retries,
downloads from S3, checksums, files), not AWS's or K3s's (their times are the model's:
k3s_infra/model/durations.py, docs/performance.md "How long it takes"). A phase is a top-level function
of boot.sh main (bash's trace with $EPOCHREALTIME); "other" is main's own lines between them.

The images tarball is random bytes of --images-mb (K3s v1.33's k3s-airgap-images-amd64.tar.zst
is about 170 MB); the binary stays the sandbox's stub K3s, which the boot then runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import yaml  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from k3s_infra.config import load_environment  # noqa: E402
from k3s_infra.render import render  # noqa: E402
from tests.support import stub_server  # noqa: E402
from tests.support.boot_sandbox import PARAMETERS, Sandbox, boot_env, expand  # noqa: E402
from tests.support.published import publish  # noqa: E402

# The world each role boots into: a new cluster for the first server, an API that answers for
# the others (as tests/boot do).
WORLDS = {
    "ServerInit": {"marker": None, "api_up_after": None, "targets": ("unhealthy",), "secure_tokens": False},
    "Servers": {"api_up_after": 0},
    "AgentPoolGeneral": {"api_up_after": 0},
}


def phases(trace: Path) -> tuple[dict[str, float], float]:
    """Seconds per top-level function of main, from bash's trace lines '+<time> <FUNCNAME...> cmd'."""
    spent: dict[str, float] = defaultdict(float)
    previous: tuple[float, str] | None = None  # (when, phase) of the line before
    first = last = None
    for line in trace.read_text(errors="replace").splitlines():
        if not line.startswith("+"):
            continue
        head = line.lstrip("+").split(" ", 2)
        try:
            moment = float(head[0])
        except (ValueError, IndexError):
            continue
        # PS4 is '+<time> ${FUNCNAME[*]} ': the function names, innermost first, then the command.
        stack = []
        for word in line.lstrip("+").split(" ")[1:]:
            if not word.isidentifier():
                break
            stack.append(word)
        phase = "other"
        if "main" in stack:
            below = stack[:stack.index("main")]
            phase = below[-1] if below else "other"
        if previous is not None:
            spent[previous[1]] += moment - previous[0]
        previous = (moment, phase)
        first = moment if first is None else first
        last = moment
    return dict(spent), (last - first) if first is not None else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images-mb", type=int, default=170)
    parser.add_argument("--env", default="dev")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    images = os.urandom(args.images_mb * 1024 * 1024)
    images_sha = hashlib.sha256(images).hexdigest()
    parameters = {**PARAMETERS, "K3sImagesSha256": images_sha}
    binary = stub_server.CLIENT.encode()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"  # noqa: SLF001 - moto exposes no getter
    results = {}
    try:
        env = load_environment(args.env)
        publish(env)  # the add-ons' object a deploy uploads, which the servers read
        templates = {s.stack_id: yaml.safe_load(s.body) for s in render(env).children}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for stack_id, world in WORLDS.items():
            user_data = expand(templates[stack_id], parameters)
            settings = boot_env(user_data)
            bucket, prefix = settings["ARTIFACT_BUCKET"], settings["ARTIFACT_PREFIX"]
            if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{parameters['K3sBinarySha256']}/k3s", Body=binary)
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{images_sha}/k3s-airgap-images-amd64.tar.zst", Body=images)
            with tempfile.TemporaryDirectory() as folder:
                trace = Path(folder) / "trace"
                started = time.monotonic()
                run = Sandbox(Path(folder) / "sandbox").run(user_data, s3_endpoint=endpoint, xtrace=str(trace),
                                                           **world, timeout=300)
                wall = time.monotonic() - started
                if run.returncode != 0:
                    print(run.stderr, file=sys.stderr)
                    return 1
                spent, traced = phases(trace)
            results[stack_id] = {"wall_seconds": round(wall, 2), "traced_seconds": round(traced, 2),
                                 "phases": {k: round(v, 3) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}}
    finally:
        server.stop()
    if args.json:
        print(json.dumps({"images_mb": args.images_mb, "roles": results}, indent=2))
        return 0
    for stack_id, result in results.items():
        print(f"{stack_id}: {result['traced_seconds']:.2f} s traced ({result['wall_seconds']:.2f} s with the sandbox)")
        width = max(len(name) for name in result["phases"])
        for name, seconds in result["phases"].items():
            if seconds >= 0.01:
                print(f"  {name:<{width}}  {seconds:7.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
