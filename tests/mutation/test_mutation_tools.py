"""The mutation tools themselves (py_mutate.py, sh_mutate.py): each operator makes the edit it
names on a small snippet, and a mutant reaches the importing process without the file on disk
ever changing. Fast; part of make test (the mutation runs are not)."""

from __future__ import annotations

import importlib
import json
import sys

from tests.mutation import py_mutant, py_mutate, sh_mutate

SNIPPET = b'''"""Docstring: never mutated."""
from __future__ import annotations

LIMIT = 50


def pick(a: int, names: list[str]) -> str | None:
    """Docstring."""
    if a < LIMIT and not names:
        log("empty")
        return "none"
    return names[0] if a in ("x", "y") else None
'''


def _edits(source: bytes) -> set[tuple[str, str, str]]:
    return {(m.ident.split(":", 3)[3], " ".join(m.before.split()), m.after) for m in py_mutate.mutants("s.py", source)}


def test_each_python_operator_makes_its_edit_and_nothing_else():
    assert _edits(SNIPPET) == {
        ("int:+1", "50", "51"), ("int:-1", "50", "49"),
        ("negate-if", "a < LIMIT and not names", "not (a < LIMIT and not names)"),
        ("boolop", "a < LIMIT and not names", "(a < LIMIT or not names)"),
        ("compare:0", "a < LIMIT", "(a <= LIMIT)"),
        ("not", "not names", "(names)"),
        ("no-call", 'log("empty")', "pass"),
        ("return-none", 'return "none"', "return None"),
        ("return-none", 'return names[0] if a in ("x", "y") else None', "return None"),
        ("int:+1", "0", "1"),  # no [0] -> [-1]: the same item of a one-item list
        ("compare:0", 'a in ("x", "y")', "(a not in ('x', 'y'))"),
        ("drop:0", '("x", "y")', "('y',)"), ("drop:1", '("x", "y")', "('x',)"),
    }


def test_code_that_runs_at_import_is_told_apart_from_function_bodies():
    at_import = {m.before for m in py_mutate.mutants("s.py", SNIPPET) if m.at_import}
    assert at_import == {"50"}


def test_a_sample_is_capped_and_the_same_every_time():
    found = py_mutate.mutants("s.py", SNIPPET)
    first = py_mutate.sample(found, "s.py", cap=5)
    assert len(first) == 5 and first == py_mutate.sample(found, "s.py", cap=5)
    assert py_mutate.sample(found, "s.py", cap=100) == found


def test_the_mutant_is_imported_while_the_file_on_disk_stays_genuine(tmp_path, monkeypatch):
    package = tmp_path / "mutation_probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    genuine = b"def same(a, b):\n    return a == b\n"
    (package / "probe.py").write_bytes(genuine)
    mutant = next(m for m in py_mutate.mutants("probe.py", genuine) if m.ident.endswith("compare:0"))
    (tmp_path / "mutant.py").write_text(mutant.text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PY_MUTATE_MODULE", "mutation_probe_pkg.probe")
    monkeypatch.setenv("PY_MUTATE_SOURCE", str(tmp_path / "mutant.py"))
    monkeypatch.setattr(sys, "meta_path", [py_mutant.MutantFinder(), *sys.meta_path])
    try:
        probe = importlib.import_module("mutation_probe_pkg.probe")
        assert probe.same(1, 1) is False and probe.__file__ == str(package / "probe.py")
    finally:
        for name in ("mutation_probe_pkg.probe", "mutation_probe_pkg"):
            sys.modules.pop(name, None)
    assert (package / "probe.py").read_bytes() == genuine


def test_each_shell_operator_makes_its_edit_and_here_documents_are_data():
    text = ('f() {\n  [ "$a" -gt 1 ] || die "x"\n  if ! g; then return 0; fi\n  [ "$b" = y ] && h\n'
            '  cat <<EOF\n[ "$c" -lt 2 ]\nEOF\n}\n')
    assert {m.after.strip() for m in sh_mutate.mutants("t.sh", text)} == {
        '[ "$a" -ge 1 ] || die "x"', '[ "$a" -gt 1 ] && die "x"', '[ "$a" -gt 1 ] || log "x"',
        '[ "$a" -gt 2 ] || die "x"',
        "if g; then return 0; fi", "if ! g; then return 1; fi", "if ! g; then return 1; fi",
        '[ "$b" != y ] && h', '[ "$b" = y ] || h',
    }


def test_a_module_measured_again_after_a_change_counts_its_last_version_only(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(py_mutate, "EQUIVALENT", tmp_path / "none.txt")
    (tmp_path / "none.txt").write_text("")
    rows = [("old", "m.py:1:0:not", "survived"), ("old", "m.py:2:0:not", "killed"),
            ("new", "m.py:2:0:not", "killed"), ("new", "m.py:3:0:not", "killed")]
    results = tmp_path / "r.jsonl"
    results.write_text("".join(json.dumps({"module": "m.py", "sha256": sha, "mutant": ident, "verdict": verdict,
                                           "by": [], "before": "not x", "after": "x", "total": 9}) + "\n"
                               for sha, ident, verdict in rows))
    py_mutate.report(results)
    out = capsys.readouterr().out
    assert "| `deploy/m.py` | 2 / 2 | 0 | 2 of 9 | 100% |" in out and "m.py:1:0:not" not in out


def test_failed_tests_are_read_whole_even_with_spaces_in_their_ids():
    out = ("FAILED tests/a.py::test_x[ExecuteChangeSet 1 UPDATE] - AssertionError: no\n"
           "ERROR tests/b.py::test_y\nFAILED tests/c.py::test_z[a b]\n")
    assert py_mutate.failed_tests(out) == ["tests/a.py::test_x[ExecuteChangeSet 1 UPDATE]", "tests/c.py::test_z[a b]"]
    assert py_mutate.failed_tests(out, errors=True)[1] == "tests/b.py::test_y"


def test_lines_a_forked_child_runs_count_for_the_test_that_forked_it(tmp_path):
    """The moto-mocked tests run in a forked child (tests/support/isolated.py in_child): the trace
    must see their lines, or their modules' mutants would be "not covered" or run without them."""
    test = tmp_path / "test_forked.py"
    test.write_text("from k3s_infra.deploy import stack_states\nfrom tests.support.isolated import in_child\n\n\n"
                    "@in_child\ndef test_in_a_child():\n    assert stack_states.running('CREATE_IN_PROGRESS')\n")
    trace = tmp_path / "trace.json"
    code, out = py_mutate._pytest([str(test)], {"PY_MUTATE_TRACE": str(trace)}, timeout=120)
    assert code == 0, out
    (run,) = json.loads(trace.read_text())["tests"].values()
    assert "stack_states.py" in run["lines"]  # run only in the child
    assert not list(tmp_path.glob("trace.json.child-*"))  # merged into the test's lines, then removed
