#!/usr/bin/env python3
"""Whole-process benchmark of rendering and linting, with ratios against an import floor.

    python bench/run.py [--runs 7] [--out bench/results/DATE.json] [--check]

Every row is a fresh Python process (what a user waits for), timed from spawn to
exit; peak memory is that process's max RSS. Each command runs once to warm up
(file cache, bytecode), then --runs times; the median is reported. The floor is
a process that only imports troposphere, awacs, yaml and the config library
(pydantic's BaseModel: a bare `import pydantic` is lazy and loads almost nothing).
--check exits 1 when rendering prod takes more than 2x the floor.
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
MAX_RENDER_RATIO = 2.0


def measure(argv: list[str], runs: int) -> dict:
    """Median wall time and peak RSS of ``argv`` as a whole process, after one warm-up run."""
    times, peaks, output = [], [], ""
    for attempt in range(runs + 1):
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.stdout.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{output}")
        if attempt:  # the first run only warms up
            times.append(elapsed)
            peaks.append(usage.ru_maxrss / 1024)  # KiB -> MiB on Linux
    return {"seconds": statistics.median(times), "min_seconds": min(times), "peak_mib": max(peaks),
            "runs": runs, "output": output}


def pool_configs(folder: Path) -> dict[int, Path]:
    """prod with 1, 10 and 30 identical agent pools, as complete environment files."""
    sys.path.insert(0, str(ROOT))
    import yaml

    from k3s_infra.config import read_document

    base = read_document(ROOT / "environments" / "prod.yaml")
    pool = base["agent_pools"][0]
    paths = {}
    for count in (1, 10, 30):
        document = {**base, "agent_pools": [{**pool, "name": f"pool-{i:02d}"} for i in range(count)]}
        paths[count] = folder / f"pools-{count}.yaml"
        paths[count].write_text(yaml.safe_dump(document, sort_keys=False))
    return paths


def cdk_available() -> bool:
    try:
        metadata.version("aws-cdk-lib")
    except metadata.PackageNotFoundError:
        return False
    return shutil.which("node") is not None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("troposphere", "awacs", "pydantic", "PyYAML", "cfn-lint", "aws-cdk-lib"):
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
    parser.add_argument("--skip-lint", action="store_true", help="only measure rendering")
    args = parser.parse_args()

    # What an installed package has: bytecode for our modules (pip compiles site-packages).
    compileall.compile_dir(ROOT / "k3s_infra", quiet=1)
    compileall.compile_dir(ROOT / "stacks", quiet=1)
    scratch = Path(tempfile.mkdtemp(prefix="k3s-infra-bench-"))
    try:
        configs = pool_configs(scratch)
        build = [PYTHON, str(ROOT / "build.py")]
        rows: list[tuple[str, list[str]]] = [
            ("floor: import troposphere, awacs, yaml, pydantic", [PYTHON, "-c", FLOOR]),
            ("render dev", [*build, "--env", "dev", "--out", str(scratch / "dev")]),
            ("render prod", [*build, "--env", "prod", "--out", str(scratch / "prod")]),
            *[(f"render {count} agent pools", [*build, "--config", str(path), "--out", str(scratch / f"p{count}")])
              for count, path in configs.items()],
        ]
        if not args.skip_lint:
            cli = [PYTHON, "-m", "k3s_infra", "lint"]
            rows += [("lint dev (cfn-lint + checkov)", [*cli, "--env", "dev"]),
                     ("lint prod (cfn-lint + checkov)", [*cli, "--env", "prod"]),
                     ("lint prod (cfn-lint only)", [*cli, "--env", "prod", "--no-checkov"])]
        results = {}
        for name, argv in rows:
            print(f"  measuring {name} ...", file=sys.stderr)
            results[name] = measure(argv, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    floor = results[rows[0][0]]["seconds"]
    for name, result in results.items():
        result["ratio"] = result["seconds"] / floor
        per_template = re.search(r"cfn-lint\s+\d+ templates in [\d.]+s \((\d+) ms per template\)", result["output"])
        if per_template:
            result["cfn_lint_ms_per_template"] = int(per_template[1])
    pools = {n: results[f"render {n} agent pools"]["seconds"] for n in (1, 10, 30)}
    per_pool = {"1->10": (pools[10] - pools[1]) / 9, "10->30": (pools[30] - pools[10]) / 20}
    cdk = "not measured: aws-cdk-lib and node not installed" if not cdk_available() else \
        "installed, but no CDK app ships with this benchmark yet"

    print_table(results, per_pool, cdk)
    report = {
        "date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "machine": platform.machine(),
        "versions": versions(), "runs": args.runs, "floor_command": FLOOR,
        "results": {name: {k: v for k, v in r.items() if k != "output"} for name, r in results.items()},
        "seconds_per_added_pool": per_pool, "cdk": cdk,
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


def print_table(results: dict, per_pool: dict, cdk: str) -> None:
    width = max(len(name) for name in results)
    print(f"{'command':<{width}}  {'median':>8}  {'min':>8}  {'peak':>8}  {'x floor':>7}")
    for name, r in results.items():
        note = f"  ({r['cfn_lint_ms_per_template']} ms/template cfn-lint)" if "cfn_lint_ms_per_template" in r else ""
        print(f"{name:<{width}}  {r['seconds']:>7.3f}s  {r['min_seconds']:>7.3f}s  {r['peak_mib']:>5.0f} MiB"
              f"  {r['ratio']:>6.2f}x{note}")
    print(f"\nrender cost per added agent pool: {per_pool['1->10'] * 1000:.1f} ms (1->10), "
          f"{per_pool['10->30'] * 1000:.1f} ms (10->30)")
    print(f"AWS CDK synth: {cdk}")


if __name__ == "__main__":
    sys.exit(main())
