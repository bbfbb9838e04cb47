#!/usr/bin/env python3
"""Whole-process benchmark of rendering and linting, with ratios against an import floor.

    python bench/run.py [--runs 7] [--out bench/results/DATE.json] [--check] [--cdk-python PATH]

Every row is a fresh Python process (what a user waits for), timed from spawn to
exit; peak memory is that process's max RSS. Each command runs once to warm up
(file cache, bytecode), then the commands take turns for --runs rounds, so a busy
moment hits every row alike. The median is reported; a row's ratio to the floor is
the median of its runs each divided by the floor's run of the same round. The floor
is a process that only imports troposphere, awacs, yaml and the config library
(pydantic's BaseModel: a bare `import pydantic` is lazy and loads almost nothing).
--check exits 1 when rendering prod takes more than 2x the floor.

Where an interpreter with aws-cdk-lib is given (--cdk-python, default this one) and
node is on PATH, bench/cdk_app.py synthesises the same prod stacks and resources
with the AWS CDK for comparison; otherwise that row says it was skipped.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FLOOR = "import troposphere, awacs, yaml; from pydantic import BaseModel"
FLOOR_ROW = "floor: import troposphere, awacs, yaml, pydantic"
CDK_ROW = "AWS CDK synth prod (same resources, L1)"
MAX_RENDER_RATIO = 2.0


def run_once(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and output of ``argv`` as a whole process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{output}")
    return elapsed, usage.ru_maxrss / 1024, output  # KiB -> MiB on Linux


def measure(rows: list[tuple[str, list[str], int]]) -> dict[str, dict]:
    """One warm-up run each, then rounds in which every row runs once (a row stops after its own count)."""
    for name, argv, _ in rows:
        print(f"  warming up {name} ...", file=sys.stderr)
        run_once(argv)
    samples: dict[str, list] = {name: [] for name, _, _ in rows}
    for round_ in range(max(runs for _, _, runs in rows)):
        print(f"  round {round_ + 1} ...", file=sys.stderr)
        for name, argv, runs in rows:
            if round_ < runs:
                samples[name].append(run_once(argv))
    floor = [s[0] for s in samples[rows[0][0]]]
    return {name: {"seconds": statistics.median(s[0] for s in runs), "min_seconds": min(s[0] for s in runs),
                   "peak_mib": max(s[1] for s in runs), "runs": len(runs), "output": runs[-1][2],
                   # each run against the floor of its own round: steady even when the machine is not
                   "ratio": statistics.median(s[0] / f for s, f in zip(runs, floor))}
            for name, runs in samples.items()}


def pool_configs(folder: Path) -> dict[int, Path]:
    """prod with 1, 10 and 30 identical agent pools, as complete environment files."""
    sys.path.insert(0, str(ROOT))
    import yaml

    from k3s_infra.config import read_document

    base = read_document(ROOT / "environments" / "prod.yaml")
    pool = base["agent_pools"][0]
    paths = {}
    for count in (1, 10, 30):
        document = {**base, "agent_pools": [{**pool, "name": f"pool-{i:02d}"} for i in range(count)],
                    # a /24 of pods per node: 30 pools of up to 9 nodes outgrow the default /16
                    "k3s": {**base.get("k3s", {}), "cluster_cidr": "10.40.0.0/15"}}
        paths[count] = folder / f"pools-{count}.yaml"
        paths[count].write_text(yaml.safe_dump(document, sort_keys=False))
    return paths


def cdk_skip_reason(python: str) -> str | None:
    """None when ``python`` imports aws_cdk and node is on PATH, else why the CDK row is skipped."""
    if shutil.which("node") is None:
        return "skipped (not installed: node)"
    probe = subprocess.run([python, "-c", "import importlib.util, sys; sys.exit(not importlib.util.find_spec('aws_cdk'))"],
                           capture_output=True)
    return None if probe.returncode == 0 else "skipped (not installed: aws-cdk-lib)"


def cdk_version(python: str) -> str:
    return subprocess.run([python, "-c", "from importlib import metadata; print(metadata.version('aws-cdk-lib'))"],
                          capture_output=True, text=True).stdout.strip()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("troposphere", "awacs", "pydantic", "PyYAML", "cfn-lint"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    checkov = shutil.which("checkov") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if Path(checkov).exists():
        found["checkov"] = subprocess.run([checkov, "--version"], capture_output=True, text=True).stdout.strip()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command (after one warm-up)")
    parser.add_argument("--out", type=Path, help="JSON result file (default bench/results/<date>.json)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if render prod / floor > {MAX_RENDER_RATIO}")
    parser.add_argument("--skip-lint", action="store_true", help="only measure rendering (and CDK)")
    parser.add_argument("--cdk-python", default=os.environ.get("K3S_INFRA_CDK_PYTHON", PYTHON), metavar="PATH",
                        help="interpreter with aws-cdk-lib for the CDK row (default: $K3S_INFRA_CDK_PYTHON or this one)")
    parser.add_argument("--cdk-runs", type=int, default=3, help="measured runs of the (slow) CDK synth")
    args = parser.parse_args()

    # What an installed package has: bytecode for our modules (pip compiles site-packages).
    compileall.compile_dir(ROOT / "k3s_infra", quiet=1)
    compileall.compile_dir(ROOT / "stacks", quiet=1)
    compileall.compile_file(ROOT / "build.py", quiet=1)
    scratch = Path(tempfile.mkdtemp(prefix="k3s-infra-bench-"))
    try:
        configs = pool_configs(scratch)
        build = [PYTHON, str(ROOT / "build.py")]
        rows: list[tuple[str, list[str], int]] = [
            (FLOOR_ROW, [PYTHON, "-c", FLOOR], args.runs),
            ("render prod", [*build, "--env", "prod", "--out", str(scratch / "prod")], args.runs),  # next to the floor
            ("render dev", [*build, "--env", "dev", "--out", str(scratch / "dev")], args.runs),
            *[(f"render {count} agent pools", [*build, "--config", str(path), "--out", str(scratch / f"p{count}")],
               args.runs) for count, path in configs.items()],
        ]
        if not args.skip_lint:
            cli = [PYTHON, "-m", "k3s_infra", "lint"]
            rows += [("lint dev", [*cli, "--env", "dev"], args.runs),
                     ("lint prod", [*cli, "--env", "prod"], args.runs),
                     ("lint prod (cfn-lint only)", [*cli, "--env", "prod", "--no-checkov"], args.runs)]
        cdk_skipped = cdk_skip_reason(args.cdk_python)
        if not cdk_skipped:
            # The CDK app reads the JSON rendering (not timed) and synthesises the same stacks.
            run_once([*build, "--env", "prod", "--format", "json", "--out", str(scratch / "prod-json")])
            rows.append((CDK_ROW, [args.cdk_python, str(ROOT / "bench" / "cdk_app.py"), str(scratch / "prod-json"),
                                   str(scratch / "cdk.out")], args.cdk_runs))
        results = measure(rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    for result in results.values():
        per_template = re.search(r"cfn-lint\s+(\d+) templates in [\d.]+s \((\d+) ms per template\)",
                                 result["output"])
        if per_template:
            result["templates"] = int(per_template[1])
            result["cfn_lint_ms_per_template"] = int(per_template[2])
        if "checkov   skipped" in result["output"]:
            result["checkov"] = "skipped"
    if cdk_skipped:
        results[CDK_ROW] = {"skipped": cdk_skipped}
    pools = {n: results[f"render {n} agent pools"]["min_seconds"] for n in (1, 10, 30)}  # best runs: least noise
    per_pool = {"1->10": (pools[10] - pools[1]) / 9, "10->30": (pools[30] - pools[10]) / 20}

    print_table(results, per_pool)
    found = versions()
    if not cdk_skipped:
        found["aws-cdk-lib"] = cdk_version(args.cdk_python)
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    report = {
        "date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "machine": platform.machine(),
        "versions": found, "runs": args.runs, "floor_command": FLOOR,
        "results": {name: {k: v for k, v in r.items() if k != "output"} for name, r in results.items()},
        "seconds_per_added_pool": per_pool,
    }
    out = args.out or ROOT / "bench" / "results" / f"{report['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    ratio = results["render prod"]["ratio"]
    if args.check and ratio > MAX_RENDER_RATIO:
        print(f"render prod is {ratio:.2f}x the import floor (limit {MAX_RENDER_RATIO}x)", file=sys.stderr)
        return 1
    return 0


def print_table(results: dict, per_pool: dict) -> None:
    """A Markdown table (pastes into docs/performance.md as it is)."""
    print("| command | median | min | peak RSS | x floor | note |")
    print("|---|--:|--:|--:|--:|---|")
    for name, r in results.items():
        if "skipped" in r:
            print(f"| {name} | | | | | {r['skipped']} |")
            continue
        notes = []
        if "cfn_lint_ms_per_template" in r:
            notes.append(f"{r['templates']} templates, {r['cfn_lint_ms_per_template']} ms/template cfn-lint")
        if r.get("checkov") == "skipped" and "cfn-lint only" not in name:
            notes.append("checkov not installed")
        print(f"| {name} | {r['seconds']:.3f} s | {r['min_seconds']:.3f} s | {r['peak_mib']:.0f} MiB "
              f"| {r['ratio']:.2f}x | {'; '.join(notes)} |")
    print(f"\nrender cost per added agent pool (from the best runs): {per_pool['1->10'] * 1000:.1f} ms (1->10), "
          f"{per_pool['10->30'] * 1000:.1f} ms (10->30)")
    print("x floor: median over rounds of each run divided by the floor's run in the same round")


if __name__ == "__main__":
    sys.exit(main())
