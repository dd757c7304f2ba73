"""The one loop behind the case sweep, the history retention and the drops watch."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from central.leases.job import LeasedJob


def _until(check, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.01)


def test_a_failing_step_is_logged_once_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("store away")

    job = LeasedJob("test-job", step, interval_s=0.01).start()
    with caplog.at_level(logging.INFO, logger="central.leases.job"):
        _until(lambda: len(calls) >= 5)
    job.stop()
    failures = [r for r in caplog.records if "test-job failed" in r.getMessage()]
    assert len(failures) == 1, "a lasting failure is logged once"
    assert any("test-job works again" in r.getMessage() for r in caplog.records)


def test_only_the_lease_holder_steps_and_first_at_start_runs_at_once() -> None:
    held = threading.Event()
    stepped = threading.Event()
    job = LeasedJob("held", stepped.set, interval_s=0.01, holds=held.is_set).start()
    time.sleep(0.2)
    assert not stepped.is_set(), "stepped without the lease"
    held.set()
    _until(stepped.is_set)
    job.stop()
    first = threading.Event()
    at_start = LeasedJob("hourly", first.set, interval_s=3600, first_at_start=True).start()
    _until(first.is_set)  # not after an hour
    at_start.stop()
