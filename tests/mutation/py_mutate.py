"""Mutation testing of the deploy library (k3s_infra/deploy/*.py), standard library only.

mutmut's run (`make mutate`) covers the security- and formation-critical modules; this covers
the deploy library, whose tests are Stubber- and moto-driven. Each mutant is one AST edit of
one module: a comparison flipped (== !=, < <=, > >=, in / not in, is / is not), and / or
swapped, a `not` removed, an int literal +1 or -1, one string dropped from a literal
set/tuple/list of strings, `return X` made `return None`, a call statement removed, an if
condition negated. The tree is never written: the mutant is served to the test process by an
import hook (the pytest plugin tests/mutation/py_mutant.py), so a session editing the tree
meanwhile never sees a mutant, and an interrupted run leaves nothing behind.

Tests per mutant come from one traced run (``trace``): the tests that executed the mutated
lines (any test that executed the module, for code run at import), without the tests that
failed in that run; end-to-end tests only for lines no other test executes. Each module's
run starts with a control run of the genuine module through the hook. A module whose bytes
change during its run is skipped (its mutants would no longer match the file).

    .venv/bin/python tests/mutation/py_mutate.py trace          # once, ~6 min
    .venv/bin/python tests/mutation/py_mutate.py run [groups.py ...]
    .venv/bin/python tests/mutation/py_mutate.py trace tests/unit/deploy/test_x.py  # merged in
    .venv/bin/python tests/mutation/py_mutate.py run --survivors [groups.py ...]   # again
    .venv/bin/python tests/mutation/py_mutate.py report        # the table of docs/testing.md
    .venv/bin/python tests/mutation/py_mutate.py show groups.py:27:15:compare:0

Results: build/mutation/deploy.jsonl (one line per mutant run; the last one counts).
Equivalent mutants, each with its reason: tests/mutation/equivalent_mutants.txt.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "k3s_infra" / "deploy"
OUT = ROOT / "build" / "mutation"
TRACE = OUT / "deploy-trace.json"
RESULTS = OUT / "deploy.jsonl"
EQUIVALENT = Path(__file__).with_name("equivalent_mutants.txt")
UNIVERSE = ("tests/unit/deploy", "tests/unit/cli", "tests/e2e")
E2E = "tests/e2e/"
# Modules other sessions may still be editing go last (the brief of issue 28, item 5).
LAST = ("package.py", "preflight.py", "artifacts.py", "lifecycle.py")
CAP, SEED = 60, 28

FLIP = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
        ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass(frozen=True)
class Mutant:
    module: str        # file name in k3s_infra/deploy
    ident: str         # <module>:<line>:<col>:<operator>[:<n>]
    lines: tuple[int, int]
    at_import: bool    # not inside a function body: runs when the module is imported
    before: str        # the original source of the edited node
    after: str         # its replacement
    text: str          # the whole mutated module

    def diff(self) -> str:
        return f"{self.ident}\n  - {' '.join(self.before.split())}\n  + {' '.join(self.after.split())}"


def _offsets(source: bytes) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _edits(tree: ast.Module):
    """(operator, node whose source is replaced, replacement text or node, in a function?)"""
    def visit(node: ast.AST, in_function: bool):
        if isinstance(node, ast.JoinedStr):
            return  # f-string parts: positions unreliable before 3.12, and only text
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            return
        yield from edits_of(node, in_function)
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "type_comment"):
                continue  # annotations are strings here (from __future__ import annotations)
            inner = in_function or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                                    and field == "body")
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    if field == "body" and child is _docstring(node):
                        continue
                    yield from visit(child, inner)

    def edits_of(node: ast.AST, in_function: bool):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in FLIP:
                    ops = [*node.ops]
                    ops[i] = FLIP[type(op)]()
                    yield f"compare:{i}", node, ast.Compare(node.left, ops, node.comparators), in_function
        elif isinstance(node, ast.BoolOp):
            yield "boolop", node, ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values), in_function
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield "not", node, node.operand, in_function
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield "int:+1", node, ast.Constant(node.value + 1), in_function
            if node.value:  # [0] -> [-1] is the same item of a one-item list
                yield "int:-1", node, ast.Constant(node.value - 1), in_function
        elif (isinstance(node, (ast.Set, ast.Tuple, ast.List)) and len(node.elts) >= 2
              and isinstance(getattr(node, "ctx", ast.Load()), ast.Load)
              and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)):
            for i in range(len(node.elts)):
                yield f"drop:{i}", node, type(node)(**{**vars(node), "elts": node.elts[:i] + node.elts[i + 1:]}), in_function
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return-none", node, "return None", in_function
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            yield "no-call", node, "pass", in_function
        elif isinstance(node, (ast.If, ast.While)) and not (isinstance(node.test, ast.UnaryOp)
                                                             and isinstance(node.test.op, ast.Not)):
            yield "negate-if", node.test, None, in_function  # not (<its text>); `not x`: see "not"

    yield from visit(tree, False)


def _docstring(node: ast.AST):
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0]
    return None


def mutants(name: str, source: bytes) -> list[Mutant]:
    """Every mutant of module ``name`` (its source ``source``), in source order."""
    tree, starts, found = ast.parse(source), _offsets(source), []
    genuine = ast.dump(tree)
    for operator, node, new, in_function in _edits(tree):
        start = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        before = source[start:end].decode()
        if new is None:
            after = f"not ({before})"
        elif isinstance(new, str):
            after = new
        else:
            bare = isinstance(new, (ast.Constant, ast.Set, ast.Tuple, ast.List))  # unparsed with their brackets
            after = ast.unparse(new) if bare else f"({ast.unparse(new)})"
        text = (source[:start] + after.encode() + source[end:]).decode()
        try:
            if ast.dump(ast.parse(text)) == genuine:
                continue  # e.g. parentheses only
        except SyntaxError:
            continue
        ident = f"{name}:{node.lineno}:{node.col_offset}:{operator}"
        found.append(Mutant(name, ident, (node.lineno, node.end_lineno), not in_function, before, after, text))
    return found


def sample(found: list[Mutant], name: str, cap: int = CAP, seed: int = SEED) -> list[Mutant]:
    """At most ``cap`` of them, the same ones on every run (seeded by the module's name)."""
    if len(found) <= cap:
        return found
    keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(found)), cap))
    return [found[i] for i in keep]


def tests_for(mutant: Mutant, trace: dict) -> list[str]:
    """The passing tests that execute the mutant's lines (any line of the module, at import);
    end-to-end tests only when no other test does."""
    lo, hi = mutant.lines
    chosen = []
    for nodeid, run in trace["tests"].items():
        lines = run["lines"].get(mutant.module, [])
        if run["outcome"] == "passed" and lines and (mutant.at_import or any(lo <= n <= hi for n in lines)):
            chosen.append(nodeid)
    fast = [t for t in chosen if not t.startswith(E2E)]
    return _with_earlier(fast or chosen, trace)


def _with_earlier(chosen: list[str], trace: dict) -> list[str]:
    """With every passing test run before them in their files (a file's tests may build on
    the ones before them: docs/contributing.md "Tests"), in the traced order."""
    last = {t.split("::")[0]: t for t in chosen}
    keep, done = [], set()
    for nodeid, run_ in trace["tests"].items():
        file = nodeid.split("::")[0]
        if file in last and file not in done and run_["outcome"] == "passed":
            keep.append(nodeid)
        if last.get(file) == nodeid:
            done.add(file)
    return keep


def _pytest(args: list[str], env: dict, timeout: float) -> tuple[int | str, str]:
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-p", "tests.mutation.py_mutant", *args], cwd=ROOT, env={**os.environ, **env},
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    return done.returncode, done.stdout


def run_tests(name: str, text: str, nodeids: list[str], folder: Path, timeout: float,
              stop_first: bool = True) -> tuple[int | str, str]:
    """pytest on ``nodeids`` with k3s_infra.deploy.<name> imported from ``text``."""
    folder.mkdir(parents=True)
    source, selection = folder / name, folder / "selected.txt"
    source.write_text(text, encoding="utf-8")
    selection.write_text("\n".join(nodeids), encoding="utf-8")
    files = list(dict.fromkeys(n.split("::")[0] for n in nodeids))
    env = {"PY_MUTATE_MODULE": f"k3s_infra.deploy.{name.removesuffix('.py')}", "PY_MUTATE_SOURCE": str(source),
           "PY_MUTATE_SELECT": str(selection)}
    return _pytest([*(["-x"] if stop_first else []), "--basetemp", str(folder / "tmp"), *files], env, timeout)


def failed_tests(out: str, errors: bool = False) -> list[str]:
    """The node IDs of pytest's summary lines (``FAILED <id> - <message>``): an ID may hold
    spaces (parametrize IDs), so it ends at " - " or the line's end, not at the first space."""
    return re.findall(rf"^(?:FAILED{'|ERROR' if errors else ''}) (.+?)(?: - .*)?$", out, re.M)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trace(paths: list[str]) -> None:
    """Trace ``paths``; merged into an earlier trace when given (a changed module's lines
    from the earlier one are dropped: trace everything again for those)."""
    OUT.mkdir(parents=True, exist_ok=True)
    started, new = time.monotonic(), OUT / "trace-new.json"
    code, out = _pytest([*paths], {"PY_MUTATE_TRACE": str(new)}, timeout=3 * 3600)
    print(out[-2000:])
    doc = json.loads(new.read_text())
    if paths != list(UNIVERSE) and TRACE.exists():
        old = json.loads(TRACE.read_text())
        changed = {m for m, digest in doc["files"].items() if old["files"].get(m) != digest}
        print("changed since the earlier trace (their earlier lines dropped):", sorted(changed) or "none")
        for run_ in old["tests"].values():
            run_["lines"] = {m: lines for m, lines in run_["lines"].items() if m not in changed}
        doc["tests"] = {**old["tests"], **doc["tests"]}
    TRACE.write_text(json.dumps(doc))
    print(f"trace: pytest exit {code} in {time.monotonic() - started:.0f} s -> {TRACE.relative_to(ROOT)}")


def latest(path: Path = RESULTS) -> dict[str, dict]:
    """The last result of each mutant run."""
    lines = path.read_text().splitlines() if path.exists() else []
    return {r["mutant"]: r for r in map(json.loads, lines)}


def equivalent() -> dict[str, str]:
    """ident -> why no test can tell it from the genuine module."""
    rows = (line.split(None, 1) for line in EQUIVALENT.read_text().splitlines() if line.strip()[:1] not in ("", "#"))
    return {ident: reason.strip() for ident, reason in rows}


def order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (n in LAST, LAST.index(n) if n in LAST else 0, n))


def run(names: list[str], cap: int, seed: int, survivors: bool = False) -> None:
    trace_doc, earlier, results = json.loads(TRACE.read_text()), latest(), RESULTS
    for name in order(names or [p.name for p in PACKAGE.glob("*.py")]):
        path = PACKAGE / name
        source = path.read_bytes()
        digest = hashlib.sha256(source).hexdigest()
        if trace_doc["files"].get(name) != digest:
            print(f"{name}: changed since the trace, skipped (run trace again)", flush=True)
            continue
        found = mutants(name, source)
        chosen = sample(found, name, cap, seed)
        if survivors:  # again, those not killed the last time
            chosen = [m for m in chosen if not earlier.get(m.ident, {"verdict": "killed"})["verdict"].startswith("killed")]
        with tempfile.TemporaryDirectory(prefix="py-mutate-") as tmp:
            folder = Path(tmp)
            union = sorted({t for m in chosen for t in tests_for(m, trace_doc)})
            durations = {t: trace_doc["tests"][t]["duration"] for t in union}
            code, out = run_tests(name, source.decode(), union, folder / "control", 3600, stop_first=False) \
                if union else (0, "")
            failing = failed_tests(out, errors=True)
            if code != 0:
                print(f"{name}: control run failed ({code}); excluded: {failing}", flush=True)
                if not failing:
                    continue
            verdicts = {}
            for n, mutant in enumerate(chosen):
                if _digest(path) != digest:
                    print(f"{name}: changed during its run, skipped", flush=True)
                    break
                selected = [t for t in tests_for(mutant, trace_doc) if t not in failing]
                if not selected:
                    verdict = "not covered"
                else:
                    budget = 60 + 3 * sum(durations.get(t, 1.0) for t in selected)
                    code, out = run_tests(name, mutant.text, selected, folder / f"m{n}", budget)
                    verdict = {0: "survived", 1: "killed", 2: "killed (error)", "timeout": "killed (timeout)"}.get(
                        code, f"error {code}")
                verdicts[mutant.ident] = verdict
                with results.open("a") as stream:
                    by = failed_tests(out)[:1] if selected else []
                    stream.write(json.dumps({"module": name, "mutant": mutant.ident, "verdict": verdict, "by": by,
                                             "tests": len(selected), "sha256": digest, "before": mutant.before,
                                             "after": mutant.after, "total": len(found), "sampled": len(chosen)}) + "\n")
                print(f"{name} {n + 1}/{len(chosen)} {verdict:<16} {mutant.diff()}", flush=True)
            else:
                killed = sum(v.startswith("killed") for v in verdicts.values())
                print(f"== {name}: {killed} killed of {len(chosen)} (sampled {len(chosen)} of {len(found)})", flush=True)


def report(path: Path = RESULTS, folder: str = "deploy/") -> None:
    """Per module: killed / non-equivalent, equivalent, sampled of total; then every mutant
    that survived its first run, with what became of it (equivalent, killed by a test added
    since, or still alive)."""
    records = [json.loads(line) for line in (path.read_text().splitlines() if path.exists() else [])]
    # A module measured again after it changed: only its last measured version counts.
    version = {r["module"]: r["sha256"] for r in records}
    runs: dict[str, list[dict]] = {}
    for record in records:
        if record["sha256"] == version[record["module"]]:
            runs.setdefault(record["mutant"], []).append(record)
    equal = equivalent()
    killed = {m: r[-1]["verdict"].startswith("killed") and m not in equal for m, r in runs.items()}
    print("| module | killed / non-equivalent | equivalent | sampled of total | score |\n|---|---:|---:|---:|---:|")
    for name in order(sorted({r[-1]["module"] for r in runs.values()})):
        mine = [m for m, r in runs.items() if r[-1]["module"] == name]
        same, dead = sum(m in equal for m in mine), sum(killed[m] for m in mine)
        live = len(mine) - same
        print(f"| `{folder}{name}` | {dead} / {live} | {same} | {len(mine)} of {runs[mine[0]][-1]['total']} | "
              f"{100 * dead / live if live else 100:.0f}% |")
    print("\n| mutant | edit | triage |\n|---|---|---|")
    for mutant, records in runs.items():
        first, last = records[0], records[-1]
        if first["verdict"].startswith("killed") and mutant not in equal:
            continue
        edit = f"`{' '.join(first['before'].split())[:60]}` -> `{' '.join(first['after'].split())[:60]}`"
        triage = (f"equivalent: {equal[mutant]}" if mutant in equal else
                  f"killed by `{(last.get('by') or ['?'])[0].split('::')[-1]}`" if killed[mutant] else last["verdict"].upper())
        print(f"| `{mutant}` | {edit.replace('|', '¦')} | {triage} |")


def show(ident: str) -> None:
    name = ident.split(":")[0]
    for mutant in mutants(name, (PACKAGE / name).read_bytes()):
        if mutant.ident == ident:
            print(mutant.diff())
            tests = tests_for(mutant, json.loads(TRACE.read_text()))
            print(f"{len(tests)} tests in", *dict.fromkeys(t.split("::")[0] for t in tests), sep="\n  ")


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("run", [])
    cap = int(os.environ.get("PY_MUTATE_CAP", CAP))
    if command == "trace":
        trace(args or list(UNIVERSE))
    elif command == "run":
        again = args[:1] == ["--survivors"]
        run(args[again:], cap, int(os.environ.get("PY_MUTATE_SEED", SEED)), survivors=again)
    elif command == "report":
        report()
    elif command == "show":
        show(args[0])
    elif command == "count":
        for name in order([p.name for p in PACKAGE.glob("*.py")]):
            print(f"{name:<22} {len(mutants(name, (PACKAGE / name).read_bytes()))}")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
