"""Fixtures of the boot sandbox (see tests/support/boot_sandbox.py)."""

from __future__ import annotations

import pytest
from tests.support.boot_sandbox import REAL_CURL, Sandbox, expand


@pytest.fixture
def sandbox(tmp_path) -> Sandbox:
    if REAL_CURL is None:
        pytest.skip("curl is needed to talk to the loopback metadata service")
    return Sandbox(tmp_path)


@pytest.fixture
def user_data(rendered):
    """user_data(env_name, stack_id) -> the user data of that node stack as the instance receives it."""

    def _get(env_name: str, stack_id: str) -> str:
        return expand(rendered[env_name].templates[stack_id])

    return _get
