"""Scenarios 1 and 2: the broker, then central, SIGKILLed mid-load and restarted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.rig import FaultRun, rig, run_with_fault, soak_factor

# A whole rig (broker, central, boxes) through a fault, 10-20 s each: `make test-long`.
pytestmark = pytest.mark.long

SECONDS = 6.0 * soak_factor()
RATE = 20.0 * min(soak_factor(), 5)  # bay changes per second per box


def assert_clean(run: FaultRun) -> None:
    assert run.audit.sent > 0
    assert run.audit.problems == []
    assert (run.audit.lost, run.audit.duplicated) == (0, 0)
    assert run.audit.stored == run.audit.sent


async def test_faults_broker_killed_mid_load_loses_nothing(tmp_path: Path) -> None:
    """Broker SIGKILLed and restarted without persistence: every seq stored once, state true."""
    async with rig(tmp_path) as r:

        async def fault() -> dict[str, float]:
            r.broker.kill()
            await asyncio.sleep(1.5)
            r.broker.start()
            return {"down_s": 1.5}

        run = await run_with_fault(
            r, scenario="1 broker SIGKILL", fault=fault, seconds=SECONDS, rate=RATE
        )
    assert_clean(run)


async def test_faults_central_killed_mid_batch_loses_nothing(tmp_path: Path) -> None:
    """Central SIGKILLed mid-batch and restarted: every seq stored once, state true."""
    async with rig(tmp_path) as r:

        async def fault() -> dict[str, float]:
            r.central.kill()
            await asyncio.sleep(1.0)
            r.central.start(wait=False)
            await asyncio.to_thread(r.central.wait_ready)
            return {"down_s": 1.0}

        run = await run_with_fault(
            r, scenario="2 central SIGKILL", fault=fault, seconds=SECONDS, rate=RATE
        )
    assert_clean(run)
