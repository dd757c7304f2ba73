"""Shared set-up for the edge benchmarks: a big box config and a box process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parent.parent


def sensor_ids(count: int, first: int = 0x00B1_0000) -> list[str]:
    return [f"{first + i:08X}" for i in range(count)]


def box_config(
    *,
    data_dir: Path,
    broker_url: str,
    device: Path,
    sign_port: int,
    bays: int,
    lots: int,
    signs: int,
    health_port: int = 0,
) -> dict[str, Any]:
    """A box with ``bays`` nwave sensors spread over ``lots`` lots and ``signs`` guidance signs."""
    ids = sensor_ids(bays)
    per_lot = -(-bays // lots)
    lot_ids = [f"L{n + 1}" for n in range(lots)]
    lot_table: dict[str, Any] = {}
    for n, lot_id in enumerate(lot_ids):
        chunk = ids[n * per_lot : (n + 1) * per_lot]
        lot_table[lot_id] = {
            "bays": {
                f"{lot_id}-{i:03d}": {"sensor": s, "format": "nwave-nps"}
                for i, s in enumerate(chunk)
            }
        }
    sign_table = {
        f"S{n + 1}": {
            "unit": n + 1,
            "profile": "parkgrid-guidance",
            "lot": lot_ids[n % lots],
            "arrow": "left",
        }
        for n in range(signs)
    }
    return {
        "site": "bench",
        "box_id": "box-bench",
        "data_dir": str(data_dir),
        "mqtt": {"url": broker_url},
        "serial": {"conc": {"device": str(device), "protocol": "concentrator"}},
        "lots": lot_table,
        "sign_buses": {
            "bus1": {
                "transport": "tcp",
                "host": "127.0.0.1",
                "port": sign_port,
                "inter_frame_gap_ms": 0,
                "refresh_interval_s": 10,
                "watchdog_timeout_s": 60,
                "signs": sign_table,
            }
        },
        "sensors": {"heartbeat_timeout_s": 3600},
        "health": {"listen": f"127.0.0.1:{health_port}"},
    }


def start_box(
    config: dict[str, Any], workdir: Path, *, wrapper: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """``parkgrid edge run`` on ``config``; ``wrapper`` (e.g. an strace command line) is put
    in front of the box's command."""
    path = workdir / "edge.toml"
    path.write_text(tomli_w.dumps(config))
    log = open(workdir / "box.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [*(wrapper or []), sys.executable, "-m", "parkgrid", "edge", "run", "--config",
         str(path), "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
    )  # fmt: skip


def stop_box(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
