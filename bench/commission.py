"""Commissioning a 150-bay lot as a technician would, timed: the tool time, goal 15 minutes.

    .venv/bin/python bench/commission.py [--bays 150] [--keep DIR]

A scripted technician follows docs/field-guide.md with simulated sensors; only the
walking is removed (the "car" reaches each bay the moment the tool asks for it). Each
step is the real command as a child process, timed from its start to its end; the sum is
the *tool time*. What the technician does by hand between commands (editing the serial
device line, typing one id) and what the simulators and the broker take to start is not
tool time, and is listed apart.

1. The office: ``parkgrid central provision-box`` for box-p3 of a site with lot P3 of
   ``--bays`` bays, writing the broker's password and ACL files; the broker (a real
   Mosquitto, no anonymous clients, those files) is started with them.
2. On site: the concentrator is a ``ConcentratorSimulator`` with a sensor buried under
   every bay (Bosch, Nwave and Dingtek in turn) and one whose battery is dead (bay 77).
   The technician puts the adapter's path into edge.toml.
3. ``learn-bays`` on provision-box's bays.csv: each bay it prompts is "driven onto" (its
   sensor reports occupied), the dead one times out after the default 120 s.
4. The dead sensor's id is read off the sensor and typed into bays.csv; ``import-bays
   --config``; ``check-config``.
5. ``doctor`` (``--listen-s 1800`` as the guide says; ``--skip clock``: a bench machine's
   clock is not the box's): it must fail at once naming the dead sensor.
6. The battery is changed (the sensor starts up), ``walk-test --bays`` walks that bay,
   and ``doctor`` again: all green but the clock.
7. ``edge run`` until central's user on the broker receives the box's lot state.

Last line: ``commission: 150 bays in N s of tool time (goal 900 s): PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from central.provision import password_line, upsert_password  # noqa: E402
from simulators.broker import MosquittoBroker, free_port  # noqa: E402
from simulators.concentrator import ConcentratorSimulator  # noqa: E402
from simulators.concentrator_control import Ground  # noqa: E402

GOAL_S = 900.0
SITE, BOX, LOT = "bench", "box-p3", "P3"
DEAD_BAY_NUMBER = 77
FORMATS = ("bosch-pls", "nwave-nps", "dingtek-do20x")


@dataclass
class Clock:
    """Tool time: the sum of each command's wall time."""

    steps: list[tuple[str, float, int]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(s for _, s, _ in self.steps)

    async def run(
        self,
        label: str,
        *args: str,
        on_line: Callable[[str], Awaitable[None]] | None = None,
        expect: tuple[int, ...] = (0,),
    ) -> str:
        """Run ``parkgrid ARGS``; ``on_line(line)`` is awaited for each stdout line."""
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parkgrid", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        err_task = asyncio.create_task(proc.stderr.read())
        out: list[str] = []
        while line := (await proc.stdout.readline()).decode():
            out.append(line)
            if on_line is not None:
                await on_line(line)
        err = (await err_task).decode()
        code = await proc.wait()
        took = time.monotonic() - started
        self.steps.append((label, took, code))
        print(f"  {took:7.1f} s  {label} (exit {code})", flush=True)
        if code not in expect:
            raise SystemExit(f"{label}: exit {code}\n{''.join(out)}\n{err}")
        return "".join(out) + err


def site_toml(bays: int) -> str:
    return (
        f'[site]\nid = "{SITE}"\nname = "Bench town"\ntimezone = "Asia/Shanghai"\n\n'
        f'[boxes.{BOX}]\nname = "P3 box"\nlots = ["{LOT}"]\n\n'
        f'[lots.{LOT}]\nname = "Market Street"\nbox_id = "{BOX}"\n'
        f'bays = {{ count = {bays}, pattern = "{LOT}-{{n:03d}}" }}\n'
    )


def wait_for_lot_state(broker: MosquittoBroker, password: str, timeout_s: float) -> bool:
    """True once central's user receives the box's retained or live lot state."""
    got = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-central-{uuid.uuid4()}")
    client.username_pw_set("central", password)
    client.on_connect = lambda c, *_: c.subscribe(f"parkgrid/v1/{SITE}/{BOX}/lot/{LOT}", 1)
    client.on_message = lambda *_: got.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        return got.wait(timeout_s)
    finally:
        client.loop_stop()
        client.disconnect()


async def commission(work: Path, bays: int) -> tuple[Clock, list[str]]:
    clock = Clock()
    notes: list[str] = []
    files = etc = work / "box-files"  # the box's /etc/parkgrid is that folder here
    passwd, acl = work / "mosquitto" / "passwd", work / "mosquitto" / "acl"
    passwd.parent.mkdir(parents=True)
    (work / "site.toml").write_text(site_toml(bays))
    port = free_port()
    print("office:", flush=True)
    await clock.run(
        "provision-box", "central", "provision-box", BOX, "--site", str(work / "site.toml"),
        "--mqtt-url", f"mqtt://127.0.0.1:{port}", "--out", str(files),
        "--password-file", str(passwd), "--acl-file", str(acl), "--box-etc", str(etc),
    )  # fmt: skip
    central_password = uuid.uuid4().hex
    upsert_password(passwd, line=password_line("central", central_password))
    as_root = ["user root"] if os.geteuid() == 0 else []
    broker = MosquittoBroker(
        workdir=work / "broker",
        port=port,
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *as_root],
    )
    broker.start()
    try:
        ground = Ground.from_csv(
            (files / "bays.csv").read_text(), source="bays.csv", formats=FORMATS
        )
        dead_bay = f"{LOT}/{LOT}-{DEAD_BAY_NUMBER:03d}"
        dead_sensor, dead_format = ground.bays[dead_bay]
        async with ConcentratorSimulator(sensors=ground.sensors(), link=work / "ttyCONC0") as sim:
            sim.core.silent.add(dead_sensor)
            for sensor in sim.core.sensors:
                await sim.send_startup(sensor)
            # By hand: the adapter's path into edge.toml (and the bench's data directory).
            config = files / "edge.toml"
            text = config.read_text()
            text = text.replace("/dev/serial/by-id/CHANGE-ME", str(sim.path))
            text = text.replace('"/var/lib/parkgrid"', json.dumps(str(work / "data")))
            config.write_text(text)
            print("on site:", flush=True)

            async def drive_on(line: str) -> None:
                event = json.loads(line)
                if event["event"] == "prompt":
                    await sim.send_status(ground.bays[event["bay"]][0], occupied=True)

            await clock.run(
                "learn-bays (150 bays, one dead: 120 s timeout)", "edge", "learn-bays",
                "--config", str(config), "--csv", str(files / "bays.csv"), "--lot", LOT,
                "--json", on_line=drive_on, expect=(1,),
            )  # fmt: skip
            # By hand: the dead sensor's id, read off its label, into its row.
            rows = list(csv.DictReader(io.StringIO((files / "bays.csv").read_text())))
            empty = [f"{r['lot']}/{r['bay']}" for r in rows if not r["sensor"]]
            if empty != [dead_bay]:
                raise SystemExit(f"learn-bays left {empty} empty, expected {[dead_bay]}")
            for row in rows:
                if f"{row['lot']}/{row['bay']}" == dead_bay:
                    row.update(sensor=dead_sensor, format=dead_format)
            out = io.StringIO()
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            (files / "bays.csv").write_text(out.getvalue())
            learned = {f"{r['lot']}/{r['bay']}": r["sensor"] for r in rows}
            wrong = [b for b, (s, _f) in ground.bays.items() if learned.get(b) != s]
            if wrong:
                raise SystemExit(f"learn-bays mapped {len(wrong)} bay(s) wrongly: {wrong[:5]}")
            await clock.run(
                "import-bays --config", "edge", "import-bays", str(files / "bays.csv"),
                "--lot", LOT, "--config", str(config),
            )  # fmt: skip
            await clock.run("check-config", "edge", "check-config", str(config))
            doctor = (
                "edge", "doctor", "--config", str(config), "--listen-s", "1800",
                "--skip", "clock", "--json",
            )  # fmt: skip
            first = await clock.run("doctor (the dead sensor)", *doctor, expect=(1,))
            if f"{dead_sensor} ({dead_bay}) silent in learn-bays" not in first:
                raise SystemExit(f"doctor did not name the dead sensor:\n{first}")
            notes.append(f"doctor named the dead sensor {dead_sensor} ({dead_bay})")
            # By hand: a new battery; the sensor starts up.
            sim.core.silent.discard(dead_sensor)
            await sim.send_startup(dead_sensor)

            async def drive_on_walk(line: str) -> None:
                if f"trigger bay {dead_bay} now" in line:
                    await sim.send_status(dead_sensor, occupied=True)

            await clock.run(
                f"walk-test --bays {dead_bay}", "edge", "walk-test", "--config", str(config),
                "--bays", dead_bay, on_line=drive_on_walk,
            )  # fmt: skip
            await clock.run("doctor (all green)", *doctor)
            await run_box(clock, config, broker, central_password)
    finally:
        broker.close()
    return clock, notes


async def run_box(clock: Clock, config: Path, broker: MosquittoBroker, password: str) -> None:
    """``edge run`` until central's user gets the lot's state; the time until then is tool time."""
    started = time.monotonic()
    box = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "edge", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        published = await asyncio.to_thread(wait_for_lot_state, broker, password, 120)
    finally:
        took = time.monotonic() - started
        box.terminate()
        _, err = await box.communicate()
    clock.steps.append(("edge run, until central has the lot's state", took, 0))
    print(f"  {took:7.1f} s  edge run, until central has the lot's state", flush=True)
    if not published:
        raise SystemExit(f"the box published nothing central could read:\n{err.decode()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bays", type=int, default=150)
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    args = parser.parse_args()
    if args.bays < DEAD_BAY_NUMBER:
        parser.error(f"--bays must be at least {DEAD_BAY_NUMBER} (bay {DEAD_BAY_NUMBER} is dead)")
    with tempfile.TemporaryDirectory(prefix="parkgrid-commission-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clock, notes = asyncio.run(commission(work, args.bays))
    for note in notes:
        print(note)
    mixed = ", ".join(FORMATS)
    print(f"sensors: {args.bays} ({mixed} in turn), one dead until its battery was changed")
    total = clock.total
    verdict = "PASS" if total < GOAL_S else "FAIL"
    print(f"commission: {args.bays} bays in {total:.0f} s of tool time (goal {GOAL_S:.0f} s): "
          f"{verdict}")  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
