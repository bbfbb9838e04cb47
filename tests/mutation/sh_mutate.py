"""Mechanical mutants of one part of the node script (boot.sh by default), run in the boot sandbox.

tests/mutation/test_boot_mutations.py holds hand-made mutations, each a named regression
of a safety property; this generates the mechanical ones, one edit each, on the part as
nodes get it (script.part: comment lines left out): a test flipped (-gt -ge, -lt -le,
-eq -ne, = !=, == !=), || and && swapped, a `die` that only logs, `return 0` / `return 1`
swapped, an `if !` that no longer negates, a number +1. Sampled as py_mutate.py samples.
Each mutant runs tests/boot (all but shellcheck, which reads the package's files) with
``-x`` through the boot_mutant plugin, which puts the mutant into every node's user data
or bundle: the tree is never written. Tests that fail with the genuine script (the
control run) are left out. The part's file changing during the run stops it.

    .venv/bin/python tests/mutation/sh_mutate.py [boot.sh|boot_lib.sh|first_server.sh|...]
    .venv/bin/python tests/mutation/sh_mutate.py --list boot.sh
    .venv/bin/python tests/mutation/sh_mutate.py --survivors boot.sh   # again: not killed, not equivalent
    .venv/bin/python tests/mutation/sh_mutate.py --report boot.sh   # the table of docs/testing.md

Results: build/mutation/<part>.jsonl (one line per mutant), a summary at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from k3s_infra.bootstrap import script  # noqa: E402
from tests.mutation.py_mutate import CAP, OUT, SEED, equivalent, failed_tests, latest, report, sample  # noqa: E402

BOOT_TESTS = ["tests/boot", "--deselect", "tests/boot/test_boot_shellcheck.py"]
HEREDOC = r"<<-?'?(\w+)"
NUMBER = r"(?<![\w$.{/:%#@=+[-])\d+(?![\w.}<>:-])"
OPERATORS = [  # (operator, pattern, replacement function of the match)
    ("test-op", r"(?<= )-(gt|ge|lt|le|eq|ne)(?= )",
     lambda m: {"gt": "-ge", "ge": "-gt", "lt": "-le", "le": "-lt", "eq": "-ne", "ne": "-eq"}[m[1]]),
    ("string-eq", r"(?<= )(!=|==|=)(?= )", lambda m: {"!=": "=", "=": "!=", "==": "!="}[m[1]]),
    ("and-or", r"\|\||&&", lambda m: "&&" if m[0] == "||" else "||"),
    ("die-logs", r"\bdie\b(?= )", lambda m: "log"),
    ("return", r"\breturn [01]\b", lambda m: "return 1" if m[0].endswith("0") else "return 0"),
    ("not", r"\b(if|elif) ! ", lambda m: f"{m[1]} "),
    ("number", NUMBER, lambda m: str(int(m[0]) + 1).zfill(len(m[0]))),
]


@dataclass(frozen=True)
class Mutant:
    module: str
    ident: str     # <part>:<line>:<col>:<operator>
    line: str      # the line as nodes get it
    after: str
    text: str

    def diff(self) -> str:
        return f"{self.ident}\n  - {self.line.strip()}\n  + {self.after.strip()}"


def mutants(name: str, text: str) -> list[Mutant]:
    """Every mechanical mutant of ``text`` (a part as nodes get it), in line order."""
    lines, found = text.split("\n"), []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("#") or re.search(HEREDOC, line):
            continue  # a #! line; here-documents' headers (their bodies are data, skipped below)
        for operator, pattern, replace in OPERATORS:
            for match in re.finditer(pattern, line):
                after = line[:match.start()] + replace(match) + line[match.end():]
                mutated = "\n".join([*lines[:number - 1], after, *lines[number:]])
                found.append(Mutant(name, f"{name}:{number}:{match.start()}:{operator}", line, after, mutated))
    unique = {m.text: m for m in reversed(found)}  # return 0 -> return 1 twice (return, number): once
    return [m for m in found if unique[m.text] is m and not _in_heredoc(text, int(m.ident.split(":")[1]))]


def _in_heredoc(text: str, number: int) -> bool:
    inside, end = False, None
    for n, line in enumerate(text.split("\n"), 1):
        if inside and line.strip() == end:
            inside = False
        elif not inside and (found := re.search(HEREDOC, line)):
            inside, end = True, found[1]
        elif inside and n == number:
            return True
    return False


def run_boot_tests(name: str, text: str, folder: Path, args: list[str], timeout: float = 1800) -> tuple[int | str, str]:
    folder.mkdir(parents=True)
    (folder / name).write_text(text, encoding="utf-8")
    env = dict(os.environ, K3S_INFRA_BOOT_MUTANT=str(folder / name), K3S_INFRA_BOOT_MUTANT_PART=name,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests" / "boot"), os.environ.get("PYTHONPATH")])))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.mutation.boot_mutant", "-p",
                               "no:cacheprovider", "--basetemp", str(folder / "pytest"), *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    return done.returncode, done.stdout


def main(argv: list[str]) -> int:
    flag = argv[0] if argv[:1] in (["--list"], ["--report"], ["--survivors"]) else None
    name = ((argv[1:] if flag else argv)[:1] or ["boot.sh"])[0]
    if flag == "--report":
        report(OUT / f"{name}.jsonl", "bootstrap/")
        return 0
    cap, seed = int(os.environ.get("PY_MUTATE_CAP", CAP)), int(os.environ.get("PY_MUTATE_SEED", SEED))
    path = ROOT / "k3s_infra" / "bootstrap" / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    found = mutants(name, script.part(name))
    chosen = sample(found, name, cap, seed)
    if flag == "--list":
        print("\n".join(m.diff() for m in chosen), f"\n{len(chosen)} of {len(found)}")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    results = OUT / f"{name}.jsonl"
    if flag == "--survivors":  # the sample's mutants whose last run did not kill them, unless equivalent
        earlier, same = latest(results), equivalent()
        chosen = [m for m in chosen if m.ident not in same and m.ident in earlier
                  and not earlier[m.ident]["verdict"].startswith("killed")]
    with tempfile.TemporaryDirectory(prefix="sh-mutate-") as tmp:
        code, out = run_boot_tests(name, script.part(name), Path(tmp) / "control", BOOT_TESTS)
        failing = failed_tests(out, errors=True)
        print(f"control: pytest exit {code}; left out: {failing}", flush=True)
        args = [*BOOT_TESTS, *(a for nodeid in failing for a in ("--deselect", nodeid)), "-x"]
        killed = 0
        for n, mutant in enumerate(chosen):
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                print(f"{name} changed during the run: stopped", flush=True)
                return 1
            code, out = run_boot_tests(name, mutant.text, Path(tmp) / f"m{n}", args)
            verdict = {0: "survived", 1: "killed", 2: "killed (error)", "timeout": "killed (timeout)"}.get(code, f"error {code}")
            killed += verdict.startswith("killed")
            failed = failed_tests(out)
            with results.open("a") as stream:
                stream.write(json.dumps({"module": name, "mutant": mutant.ident, "verdict": verdict, "by": failed[:1],
                                         "before": mutant.line, "after": mutant.after, "sha256": digest,
                                         "total": len(found), "sampled": len(chosen)}) + "\n")
            print(f"{n + 1}/{len(chosen)} {verdict:<16} {mutant.diff()}", flush=True)
    print(f"== {name}: {killed} killed of {len(chosen)} (sampled {len(chosen)} of {len(found)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
