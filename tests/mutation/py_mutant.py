"""pytest plugin of tests/mutation/py_mutate.py (``-p tests.mutation.py_mutant``), inert unless
its variables are set:

- PY_MUTATE_MODULE + PY_MUTATE_SOURCE: the module named (``k3s_infra.deploy.<name>``) is
  compiled from the mutant's text under the genuine file's name, never through a .pyc; the
  tree is never written, so a session editing it meanwhile never sees a mutant.
- PY_MUTATE_SELECT: a file of test node IDs; the other collected tests are deselected.
- PY_MUTATE_TRACE: every line of k3s_infra/deploy/*.py each test executes, with its outcome
  and duration, written there as JSON at the end (sys.settrace: slow, once per ``trace``).
  Lines a forked child runs (tests/support/isolated.py ``in_child``: the moto-mocked tests)
  count for the test that forked it: the child writes them next to the trace as it exits.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import sys
import threading
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "k3s_infra" / "deploy"


class _MutantLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        return compile(Path(os.environ["PY_MUTATE_SOURCE"]).read_bytes(), self.path, "exec", dont_inherit=True)


class MutantFinder:
    """Finds the module PY_MUTATE_MODULE names where it is, and loads it from PY_MUTATE_SOURCE."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname != os.environ.get("PY_MUTATE_MODULE"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        spec.loader = _MutantLoader(fullname, spec.origin)
        return spec


if os.environ.get("PY_MUTATE_MODULE"):
    assert os.environ["PY_MUTATE_MODULE"] not in sys.modules, "imported before the mutant could replace it"
    sys.meta_path.insert(0, MutantFinder())

_runs: dict[str, dict] = {}
_current: dict[str, set[int]] = {}
_targets = {str(p): p.name for p in PACKAGE.glob("*.py")}


def _tracer(frame, event, arg):
    lines = _current.get(frame.f_code.co_filename)
    if lines is None:
        return None

    def local(frame, event, arg):
        if event == "line":
            lines.add(frame.f_lineno)
        return local
    return local


def _child_lines() -> Path:
    return Path(f"{os.environ['PY_MUTATE_TRACE']}.child-{os.getpid()}.json")


class _Child:
    """In a multiprocessing child: its lines, written when it exits. It ends with os._exit (no
    atexit), but runs multiprocessing's finalizers first (util._exit_function); those of the
    parent are cleared as it starts, then its after-fork hooks run: one registers the writer."""

    @staticmethod
    def started(_) -> None:
        import multiprocessing.util

        def dump():
            _child_lines().write_text(json.dumps({_targets[f]: sorted(s) for f, s in _current.items() if s}))
        multiprocessing.util.Finalize(None, dump, exitpriority=0)


def _merge_children(run: dict) -> None:
    trace, by_name = Path(os.environ["PY_MUTATE_TRACE"]), {name: path for path, name in _targets.items()}
    for written in trace.parent.glob(f"{trace.name}.child-*.json"):
        for name, lines in json.loads(written.read_text()).items():
            run["lines"].setdefault(by_name[name], set()).update(lines)
        written.unlink()


if os.environ.get("PY_MUTATE_TRACE"):
    sys.settrace(_tracer)
    threading.settrace(_tracer)
    import multiprocessing.util
    multiprocessing.util.register_after_fork(_Child, _Child.started)


def pytest_runtest_protocol(item, nextitem):
    global _current
    if os.environ.get("PY_MUTATE_TRACE"):
        _current = {path: set() for path in _targets}  # read by _tracer at each call
        _runs[item.nodeid] = {"outcome": "passed", "duration": 0.0, "lines": _current}


def pytest_runtest_logreport(report):
    run = _runs.get(report.nodeid)
    if run is not None:
        _merge_children(run)  # its forked children have exited: in_child joins them
        run["duration"] += report.duration
        if report.failed:
            run["outcome"] = "failed"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PY_MUTATE_SELECT"):
        keep = set(Path(os.environ["PY_MUTATE_SELECT"]).read_text().split("\n"))
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in keep])
        items[:] = [i for i in items if i.nodeid in keep]


def pytest_sessionfinish(session):
    if os.environ.get("PY_MUTATE_TRACE"):
        sys.settrace(None)
        tests = {nodeid: {**r, "lines": {_targets[f]: sorted(s) for f, s in r["lines"].items() if s}}
                 for nodeid, r in _runs.items()}
        files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in PACKAGE.glob("*.py")}
        Path(os.environ["PY_MUTATE_TRACE"]).write_text(json.dumps({"files": files, "tests": tests}))
