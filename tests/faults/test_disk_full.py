"""Scenario 8: central's database on a small tmpfs that fills up, then gets its space back."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rig import FaultRun, rig, run_with_fault, soak_factor
from tests.faults.test_broker_central import assert_clean

# A whole rig (broker, central, boxes) through a fault, 10-20 s each: `make test-long`.
pytestmark = pytest.mark.long

SECONDS = 8.0 * soak_factor()
RATE = 20.0 * min(soak_factor(), 5)


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (scenario 8 runs as root in CI)")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(filler: Path) -> Path:
    """Append to ``filler`` (made before central started) until its file system is full.

    The file exists beforehand because creating one needs room too: when central's database
    had already taken the last of the tmpfs, ``open(..., "wb")`` itself failed with ENOSPC."""
    with open(filler, "ab") as out:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
                out.flush()
    with contextlib.suppress(OSError), open(filler, "ab") as out:
        while True:
            out.write(b"\0" * 512)
            out.flush()
    return filler


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_faults_central_disk_full_keeps_events_at_boxes(tmp_path: Path) -> None:
    """Disk full: ingest refuses with an error and a metric, boxes hold, nothing lost later."""
    # Sized with the load: a soak stores 30x the events, which alone would fill 16 MB for good.
    with small_tmpfs(tmp_path / "dbfs", f"{16 * max(1, round(soak_factor()))}m") as fs:
        (fs / "filler").touch()
        async with rig(tmp_path, central_db=fs / "central.db") as r:
            seen: dict[str, object] = {}
            assert r.central.proc.running

            async def fault() -> dict[str, object]:
                filler = fill(fs / "filler")
                took = await r.wait(
                    lambda: metric(r.central.metrics(), "parkgrid_central_ingest_store_full") == 1,
                    within=60,
                    what="central reporting the full disk",
                )
                seen["held"] = sum(b.outbox()[1] for b in r.boxes)
                seen["refused"] = metric(
                    r.central.metrics(), "parkgrid_central_ingest_store_full_batches_total"
                )
                seen["log"] = r.central.proc.log.read_text()
                filler.unlink()
                return {"held_at_boxes": seen["held"], "full_for_s": round(took, 1)}

            run = await run_with_fault(
                r, scenario="8 central disk full", fault=fault, seconds=SECONDS, rate=RATE
            )
            # Central lived through it (never restarted) and reports the disk as fine again.
            assert r.central.proc.running
            assert metric(r.central.metrics(), "parkgrid_central_ingest_store_full") == 0
    assert_clean(run)
    assert isinstance(run, FaultRun)
    # While full: the boxes held events, batches were refused, and the log said so plainly.
    assert int(str(seen["held"])) > 0
    assert float(str(seen["refused"])) > 0
    log = str(seen["log"])
    assert "central's database is full" in log
    assert "Traceback" not in log
    assert "has space again" in r.central.proc.log.read_text()
