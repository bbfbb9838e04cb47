"""Fixtures of the config tests: a fresh copy of the shipped dev and prod documents per test."""

from __future__ import annotations

import copy

import pytest


@pytest.fixture
def dev(env_document) -> dict:
    return copy.deepcopy(env_document("dev"))


@pytest.fixture
def prod(env_document) -> dict:
    return copy.deepcopy(env_document("prod"))
