"""Run a test in a forked child process: for tests that use moto's in-process mock (mock_aws),
which resets moto's backends on start and stop. The e2e tests' moto server lives in the same
process and shares those backends (tests/e2e/conftest.py), and with one pytest worker per core
(make test) a unit test may run between two e2e files of the same worker: reset in the parent,
it would wipe the harness network they rely on. The child gets a copy of everything; its reset
stays there."""

from __future__ import annotations

import functools
import multiprocessing
import traceback

import pytest

TIMEOUT_SECONDS = 120


def in_child(test):
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)

        def run() -> None:
            try:
                test(*args, **kwargs)
                send.send(None)
            except BaseException:  # noqa: BLE001 - reported to the parent as the failure
                send.send(traceback.format_exc())

        child = context.Process(target=run)
        child.start()
        if not receive.poll(TIMEOUT_SECONDS):
            child.kill()
            pytest.fail(f"{test.__name__} did not finish in {TIMEOUT_SECONDS} s in its child process")
        failure = receive.recv()
        child.join()
        if failure:
            pytest.fail(failure, pytrace=False)

    return wrapper
