"""Supervision: a crashing loop is logged and restarted; the others go on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edge.supervise import Restarts, supervised


async def test_supervised_loop_restarts_after_crash_and_others_continue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A loop that fails twice is restarted twice, logged each time, and a sibling keeps
    running throughout; cancelling stops both."""
    restarts = Restarts()
    attempts = 0
    ticks = 0
    recovered = asyncio.Event()

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise RuntimeError(f"boom {attempts}")
        recovered.set()
        await asyncio.Event().wait()

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    with caplog.at_level(logging.ERROR, logger="edge.supervise"):
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    supervised("flaky", flaky, restarts=restarts, first_delay_s=0.01)
                ),
                group.create_task(supervised("steady", steady, restarts=restarts)),
            ]
            await asyncio.wait_for(recovered.wait(), timeout=5)
            ticks_at_recovery = ticks
            await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
    assert attempts == 3
    assert restarts.counts == {"flaky": 2}
    assert ticks > ticks_at_recovery > 0
    crashes = [r for r in caplog.records if "flaky crashed" in r.getMessage()]
    assert len(crashes) == 2
    assert crashes[0].exc_info is not None
