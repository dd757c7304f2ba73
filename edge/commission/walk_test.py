"""``parkgrid edge walk-test``: walk the lot, trigger one bay at a time, check the mapping.

Theory of operation
-------------------
The box's serial lines are served by the box's own driver while the technician walks the
bays in the config's order (or ``--bays``), triggering each (a car, or the vendor's test
magnet). A *trigger* is any reading that shows a sensor going to occupied: a change report
saying occupied (``status`` from Nwave and Bosch, ``telemetry`` from Dingtek, which sends
nothing else), even from a sensor never heard before; or any reading saying occupied from
a sensor whose last known state was free (a polled M77 detector, a heartbeat).
Each trigger is judged against the bay the walk expects next::

    trigger from the expected sensor              -> PASS, next bay
    trigger from a sensor mapped to another bay   -> WRONG: the two bays' sensors are swapped
                                                     (or the car is on the wrong bay)
    trigger from a sensor the config lacks        -> NOT MAPPED: the bay's sensor id is wrong
    nothing within --bay-timeout-s                -> SILENT: the sensor is dead, out of
                                                     radio range, or not yet registered

A WRONG or NOT MAPPED trigger is recorded against the expected bay and the walk moves on:
the technician fixes the mapping (``import-bays``) and walks those bays again with
``--bays``. Every trigger is also printed as it happens, "sensor X -> bay Y", so a bay
triggered out of turn is visible. The report (``--report FILE``) is plain text to attach to
the job: box, config hash, time, one line per bay, the totals.

Each bay's result is also kept for doctor (``--results``, by default
``<data_dir>/commission/bays.json``, see :mod:`edge.commission.bay_records`): doctor counts
a passed bay's sensor as heard and names a dead one at once instead of listening for it.

Exit: 0 every bay passed; 1 any bay did not; 2 bad config or options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from edge.commission import bay_records
from edge.commission.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    BadInput,
    CommissionError,
    check_serial_lines,
    listening,
)
from edge.config import M77_FORMAT, ConfigError, EdgeConfig, config_hash, load_config
from edge.observations import SensorObservation

# The reading kinds a radio sensor sends when its bay changes: Nwave and Bosch a ``status``
# frame; Dingtek has one frame for everything, ``telemetry``, sent on a change and on its
# upload interval. Heartbeats and start-up reports are sent whatever the bay does.
CHANGE_REPORTS = frozenset({"status", "telemetry"})


class Outcome(StrEnum):
    PASS = "PASS"
    WRONG = "WRONG"
    NOT_MAPPED = "NOT MAPPED"
    SILENT = "SILENT"


@dataclass(frozen=True, slots=True, kw_only=True)
class BayStep:
    lot: str
    bay: str
    sensor: str

    @property
    def name(self) -> str:
        return f"{self.lot}/{self.bay}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BayResult:
    step: BayStep
    outcome: Outcome
    heard: str | None  # the sensor that triggered, if any
    heard_bay: str | None  # where the config puts that sensor
    at: float | None

    def line(self) -> str:
        if self.outcome is Outcome.PASS:
            return f"PASS        {self.step.name:<16} sensor {self.step.sensor}"
        if self.outcome is Outcome.SILENT:
            return (
                f"SILENT      {self.step.name:<16} sensor {self.step.sensor}: nothing heard "
                "(dead, out of range, or the wrong id)"
            )
        if self.outcome is Outcome.WRONG:
            return (
                f"WRONG       {self.step.name:<16} expected sensor {self.step.sensor}, heard "
                f"{self.heard}, which the config maps to {self.heard_bay}: swap the two "
                "bays' sensor ids (or the car was on the wrong bay)"
            )
        return (
            f"NOT MAPPED  {self.step.name:<16} expected sensor {self.step.sensor}, heard "
            f"{self.heard}, which no bay maps: put {self.heard} on {self.step.name}"
        )


def steps_of(
    config: EdgeConfig, *, lot: str | None = None, bays: Sequence[str] = ()
) -> list[BayStep]:
    """The bays to walk, in config order (``--lot``, ``--bays`` narrow it)."""
    steps = [
        BayStep(lot=lot_id, bay=bay_id, sensor=bay.sensor)
        for lot_id, bay_id, bay in config.bays()
        if lot is None or lot_id == lot
    ]
    if bays:
        wanted = set(bays)
        unknown = wanted - {s.bay for s in steps} - {s.name for s in steps}
        if unknown:
            raise BadInput(f"no such bay(s) in the config: {', '.join(sorted(unknown))}")
        steps = [s for s in steps if s.bay in wanted or s.name in wanted]
    return steps


class Triggers:
    """Turns observations into triggers (a sensor going to occupied); a serial line's sink."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
        self._last: dict[str, bool | None] = {}

    def __call__(self, obs: SensorObservation) -> None:
        occupied = obs.reading.occupied
        before = self._last.get(obs.sensor_id)
        if occupied is not None:
            self._last[obs.sensor_id] = occupied
        if occupied is not True or before is True:
            return
        # Any reading that shows the change is a trigger: one after the sensor was seen
        # free, or a report the sensor sends on a change (even if it was never heard
        # before). A polled detector, a heartbeat or a boot report only once seen free.
        change_report = obs.reading.kind in CHANGE_REPORTS and obs.reading.fmt != M77_FORMAT
        if before is False or change_report:
            self.queue.put_nowait((obs.sensor_id, obs.received_at))


async def walk(
    config: EdgeConfig,
    steps: Sequence[BayStep],
    *,
    bay_timeout_s: float,
    say: Callable[[str], None] = print,
    ready: asyncio.Event | None = None,
    into: list[BayResult] | None = None,
) -> list[BayResult]:
    """Walk ``steps`` against what the config's serial lines hear; one result per bay.

    Results are appended to ``into`` as they come, so a walk cut short keeps what it has.
    """
    where = {bay.sensor: f"{lot}/{bay_id}" for lot, bay_id, bay in config.bays()}
    triggers = Triggers()
    results: list[BayResult] = [] if into is None else into
    loop = asyncio.get_running_loop()
    async with listening(config.serial, triggers) as owners:
        # SerialLine has no "opened" event; the devices were checked, so this is short.
        while not all(o.up for o in owners):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if ready is not None:
            ready.set()
        for number, step in enumerate(steps, start=1):
            say(f"[{number}/{len(steps)}] trigger bay {step.name} now (sensor {step.sensor})")
            deadline = loop.time() + bay_timeout_s
            result: BayResult | None = None
            while result is None:
                left = deadline - loop.time()
                try:
                    sensor, at = await asyncio.wait_for(triggers.queue.get(), max(left, 0))
                except TimeoutError:
                    result = BayResult(
                        step=step, outcome=Outcome.SILENT, heard=None, heard_bay=None, at=None
                    )
                    break
                say(f"    sensor {sensor} -> {where.get(sensor, 'NOT MAPPED')}")
                if sensor == step.sensor:
                    outcome = Outcome.PASS
                elif sensor in where:
                    outcome = Outcome.WRONG
                else:
                    outcome = Outcome.NOT_MAPPED
                result = BayResult(
                    step=step, outcome=outcome, heard=sensor, heard_bay=where.get(sensor), at=at
                )
            say("    " + result.line())
            results.append(result)
    return results


def record_of(result: BayResult, *, ended: float) -> bay_records.BayRecord:
    """What doctor may reuse of one bay's result."""
    return bay_records.BayRecord(
        bay=result.step.name,
        sensor=result.step.sensor,
        outcome=result.outcome.value,
        at=result.at if result.at is not None else ended,
        by="walk-test",
        heard=result.heard if result.heard != result.step.sensor else None,
    )


def report_text(
    config: EdgeConfig,
    results: Sequence[BayResult],
    *,
    config_path: Path,
    started: float,
    ended: float,
) -> str:
    """The walk-test report, plain text, to attach to the job."""

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).astimezone(config.tz).strftime("%Y-%m-%d %H:%M:%S")

    passed = sum(1 for r in results if r.outcome is Outcome.PASS)
    lines = [
        "parkgrid walk-test report",
        f"site {config.site}, box {config.box_id}",
        f"config {config_path} (sha256 {config_hash(config_path)})",
        f"walked {stamp(started)} .. {stamp(ended)} ({config.timezone})",
        "",
        *(r.line() for r in results),
        "",
        f"{passed} of {len(results)} bay(s) passed"
        + ("" if passed == len(results) else f"; {len(results) - passed} need attention"),
    ]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the box's edge.toml")
    parser.add_argument("--lot", help="only this lot")
    parser.add_argument("--bays", default="", help="only these bays, e.g. B001,B007 (re-walks)")
    parser.add_argument(
        "--bay-timeout-s", type=float, default=120, help="wait this long per bay (120)"
    )
    parser.add_argument("--report", help="write the report here too")
    parser.add_argument(
        "--results",
        help="keep each bay's result here for doctor (default: <data_dir>/commission/bays.json)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.bay_timeout_s <= 0:
            raise BadInput("--bay-timeout-s must be positive")
        bays = [b.strip() for b in args.bays.split(",") if b.strip()]
        steps = steps_of(config, lot=args.lot, bays=bays)
        if not steps:
            raise BadInput("no bays to walk (check --lot / --bays and the config)")
        check_serial_lines(config, args.config)
    except CommissionError as exc:
        print(f"walk-test: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    started = time.time()
    results: list[BayResult] = []

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(walk(config, steps, bay_timeout_s=args.bay_timeout_s, into=results))
    text = report_text(
        config, results, config_path=Path(args.config), started=started, ended=time.time()
    )
    if len(results) < len(steps):
        text += f"walk stopped after {len(results)} of {len(steps)} bay(s)\n"
    results_path = Path(args.results) if args.results else bay_records.default_path(config)
    try:
        bay_records.save(results_path, (record_of(r, ended=time.time()) for r in results))
    except OSError as exc:
        text += f"could not keep the results for doctor in {results_path}: {exc.strerror}\n"
    print()
    print(text, end="")
    if args.report:
        Path(args.report).write_text(text, encoding="utf-8")
        print(f"report written to {args.report}")
    ok = len(results) == len(steps) and all(r.outcome is Outcome.PASS for r in results)
    return EXIT_OK if ok else EXIT_FAILED
