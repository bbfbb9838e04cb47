"""Scopes for fixtures that render: shared across tests, except under mutation testing.

mutmut 3 links a mutant to the tests that call the mutated function themselves (its
trampolines record calls while it runs the suite once with MUTANT_UNDER_TEST=stats, then
set MUTANT_UNDER_TEST to each mutant's name). A rendering cached in a session or module
fixture is made by the first test that asks for it, so every later test checking that
rendering would be invisible to mutmut and its mutants would survive untested. While
mutmut records calls, each test therefore renders for itself; while it runs a mutant (a
fresh pytest session per mutant, the same mutant throughout) sharing is sound again.
"""

from __future__ import annotations

import os


def shared(default: str):
    """A pytest dynamic scope: ``default``, except "function" while mutmut records calls."""

    def scope(fixture_name: str, config) -> str:
        return "function" if os.environ.get("MUTANT_UNDER_TEST") == "stats" else default

    return scope
