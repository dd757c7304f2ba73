"""Resident memory of a box: ``parkgrid edge run`` with 600 bays and 20 signs, under load.

    .venv/bin/python bench/edge_memory.py [--minutes 10] [--rate 20]

Starts a Mosquitto, a concentrator simulator on a pty sending random arrivals and
heartbeats (``--rate`` frames per second in all), a Modbus TCP simulator with 20 guidance
signs, and a real box process. Samples the box's VmRSS from /proc every 10 s and prints
the curve, the peak and the final value beside the goal (under 80 MB: boxes are small).
As a floor, the RSS of a bare Python interpreter that has imported the same libraries is
printed in the same run, so the box's own share is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _box import box_config, rss_mb, sensor_ids, start_box, stop_box  # noqa: E402

from simulators.broker import MosquittoBroker  # noqa: E402
from simulators.concentrator import ConcentratorCore  # noqa: E402
from simulators.pty_link import PtyLink  # noqa: E402
from simulators.signs import SignSimulator  # noqa: E402

GOAL_MB = 80.0
# What `edge run` loads; not sqlite_utils (only `edge inspect` uses it), but sqlite3.
# prometheus_client: the health page's /metrics is written with it.
IMPORTS = (
    "import paho.mqtt.client, pymodbus.client, serial_asyncio_fast, sqlite3, pydantic, "
    "prometheus_client, time"
)


def floor_rss() -> float:
    """RSS of an interpreter that only imported the box's libraries."""
    proc = subprocess.Popen([sys.executable, "-c", f"{IMPORTS}; time.sleep(5)"], cwd=REPO)
    try:
        time.sleep(3)
        return rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()


async def main(minutes: float, rate: float, bays: int, signs_count: int) -> int:
    ids = sensor_ids(bays)
    core = ConcentratorCore(sensors={sid: "nwave-nps" for sid in ids}, seed=3)
    rng = random.Random(3)
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="parkgrid-bench-") as tmp, MosquittoBroker() as broker:
        work = Path(tmp)
        link = PtyLink(name="ttyMEM", directory=work)
        units = {n + 1: "parkgrid-guidance" for n in range(signs_count)}
        async with SignSimulator(units=units, tcp=("127.0.0.1", 0)) as signs:
            assert signs.port is not None
            config = box_config(
                data_dir=work / "box", broker_url=broker.url, device=link.path,
                sign_port=signs.port, bays=bays, lots=4, signs=signs_count,
            )  # fmt: skip
            box = start_box(config, work)
            try:
                started = time.monotonic()
                next_sample = started + 10
                frames = 0
                while time.monotonic() - started < minutes * 60:
                    sid = rng.choice(ids)
                    kind = rng.random()
                    if kind < 0.7:
                        link.write(core.status(sid, occupied=rng.random() < 0.6))
                    else:
                        link.write(core.heartbeat(sid))
                    frames += 1
                    now = time.monotonic()
                    if now >= next_sample:
                        samples.append((now - started, rss_mb(box.pid)))
                        next_sample += 10
                    await asyncio.sleep(1 / rate)
                samples.append((time.monotonic() - started, rss_mb(box.pid)))
            finally:
                stop_box(box)
                link.close()
    floor = floor_rss()
    peak = max(mb for _, mb in samples)
    final = samples[-1][1]
    print(f"edge memory: {bays} bays, {signs_count} signs, {frames} frames over {minutes:g} min")
    for at, mb in samples[:: max(1, len(samples) // 12)]:
        print(f"  t={at:6.0f} s  RSS {mb:6.1f} MB")
    print(f"  floor (interpreter + the same libraries): {floor:.1f} MB")
    verdict = "PASS" if peak < GOAL_MB else "FAIL"
    print(
        f"  box RSS final {final:.1f} MB, peak {peak:.1f} MB (goal < {GOAL_MB:.0f} MB): {verdict}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=20, help="frames per second")
    parser.add_argument("--bays", type=int, default=600)
    parser.add_argument("--signs", type=int, default=20)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.minutes, args.rate, args.bays, args.signs)))
