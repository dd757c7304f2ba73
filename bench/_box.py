"""Shared set-up for the edge benchmarks: a big box config and a box process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from site_model.edge_config import Deployment, SignBus, edge_config
from site_model.site import Site, parse_site

REPO = Path(__file__).resolve().parent.parent
SITE_ID = "bench"
BOX_ID = "box-bench"


def sensor_ids(count: int, first: int = 0x00B1_0000) -> list[str]:
    return [f"{first + i:08X}" for i in range(count)]


def bench_site(*, bays: int, lots: int, signs: int) -> Site:
    """A site of one box with ``bays`` bays spread over ``lots`` lots and ``signs`` guidance
    signs, each showing a lot in turn."""
    per_lot = -(-bays // lots)
    lot_ids = [f"L{n + 1}" for n in range(lots)]
    counts = [min(per_lot, max(0, bays - n * per_lot)) for n in range(lots)]
    return parse_site(
        {
            "site": {"id": SITE_ID, "name": "Bench", "timezone": "Asia/Shanghai"},
            "boxes": {BOX_ID: {}},
            "lots": {
                lot_id: {
                    "name": lot_id,
                    "box_id": BOX_ID,
                    "bays": [f"{lot_id}-{i:03d}" for i in range(count)],
                }
                for lot_id, count in zip(lot_ids, counts, strict=True)
            },
            "signs": {
                f"S{n + 1}": {
                    "box_id": BOX_ID,
                    "kind": "guidance",
                    "lot": lot_ids[n % lots],
                    "arrow": "left",
                }
                for n in range(signs)
            },
        }
    )


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
    """The bench site's box (``bench_site``) with nwave sensors, projected by the one config
    projection (``site_model.edge_config``), on an anonymous broker."""
    site = bench_site(bays=bays, lots=lots, signs=signs)
    bay_ids = [bay_id for _, bay_id in site.lot_bays()]
    deployment = Deployment(
        mqtt_url=broker_url,
        box_etc=None,
        data_dir=str(data_dir),
        serial_device=str(device),
        sensors={bay: (s, "nwave-nps") for bay, s in zip(bay_ids, sensor_ids(bays), strict=True)},
        sign_bus=SignBus(
            bus_id="bus1",
            host="127.0.0.1",
            port=sign_port,
            units={f"S{n + 1}": n + 1 for n in range(signs)},
            settings={"inter_frame_gap_ms": 0, "refresh_interval_s": 10, "watchdog_timeout_s": 60},
        ),
        heartbeat_timeout_s=3600,
        health_listen=f"127.0.0.1:{health_port}",
    )
    return edge_config(site, BOX_ID, deployment)


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
