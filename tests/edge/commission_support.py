"""Helpers for the commissioning command tests: run ``parkgrid`` without blocking the loop."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    out: str
    err: str


async def parkgrid(*args: str, within_s: float = 60.0) -> Ran:
    """Run ``python -m parkgrid ARGS`` as a child while the simulators keep running here."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parkgrid",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())
