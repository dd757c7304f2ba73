"""``parkgrid edge learn-bays``: walk the lot; the first new sensor heard is the bay's.

Theory of operation
-------------------
Typing 150 sensor ids from the sensors' labels into bays.csv is slow and error-prone. Here
the technician walks (or drives) the lot in order instead, with provision-box's
``bays.csv`` (every bay of the box, sensor column empty) and the box's config (its serial
lines). For each bay whose sensor is still empty, in the file's order::

    [3/150] drive onto bay P1/B003 now

The first *trigger* (a reading that shows a sensor going to occupied: the same rule as
walk-test, so Dingtek's telemetry counts) from a sensor that is *new* (not yet in
bays.csv, not mapped in the config, not learned in this run; or already mapped to this very
bay, when a bay is learned again) is that bay's sensor. Its id,
and its format (from the frame itself), are written into the bay's row at once (the file is
replaced atomically after every bay, so an interrupted walk keeps what it learned); the
other columns and rows stay as they were. A trigger from a sensor already known is printed
and ignored (the car left on the previous bay moved; a neighbour's car). Nothing new within
``--bay-timeout-s`` leaves the bay empty, named at the end: a dead sensor, or one out of
radio range; its id is then read off the sensor and typed in, or the bay learned again with
``--bays``.

The lot should be empty of other traffic while it is learned: any new sensor that changes
is taken for the prompted bay. walk-test, after import-bays, is not needed for the learned
bays: each was seen reacting on its bay, and is recorded for doctor as walk-test's passes
are (:mod:`edge.commission.bay_records`).

Scripts: ``--json`` writes one JSON object per line (``prompt``, ``learned``, ``ignored``,
``not-learned``, then ``summary``) instead of the text.

Exit: 0 every bay asked for was learned; 1 some were not; 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from edge.commission.walk_test import Triggers
from edge.config import ConfigError, EdgeConfig, load_config
from edge.observations import SensorObservation


@dataclass(slots=True)
class BaysFile:
    """bays.csv as read: its columns and rows, to write back with only sensor/format set."""

    path: Path
    columns: list[str]
    rows: list[dict[str, str]]

    @classmethod
    def read(cls, path: Path) -> BaysFile:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}") from None
        reader = csv.DictReader(io.StringIO(text))
        columns = [c.strip() for c in reader.fieldnames or []]
        if "lot" not in columns or "bay" not in columns:
            raise BadInput(f"{path}: needs the columns lot and bay (as provision-box writes it)")
        rows = [
            {c.strip(): (v or "").strip() for c, v in row.items() if c is not None}
            for row in reader
        ]
        for column in ("sensor", "format"):
            if column not in columns:
                columns.append(column)
        return cls(path=path, columns=columns, rows=rows)

    def text(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in self.columns} for row in self.rows)
        return out.getvalue()

    def save(self, path: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.text())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o7777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(slots=True)
class Learned:
    """What the walk found, bay by bay."""

    learned: dict[str, tuple[str, str]] = field(default_factory=dict)  # bay -> sensor, format
    not_learned: list[str] = field(default_factory=list)


class NewTriggers(Triggers):
    """Walk-test's triggers, with the format of the frame that triggered."""

    def __init__(self) -> None:
        super().__init__()
        self.formats: dict[str, str] = {}

    def __call__(self, obs: SensorObservation) -> None:
        self.formats[obs.sensor_id] = obs.reading.fmt
        super().__call__(obs)


async def learn(
    config: EdgeConfig,
    bays: Sequence[str],
    *,
    known: dict[str, str],
    bay_timeout_s: float,
    on_learned: Callable[[str, str, str], None],
    emit: Callable[[dict[str, object]], None],
) -> Learned:
    """Prompt each of ``bays`` ("P1/B001") in turn; ``known``: sensor -> where it already is."""
    triggers = NewTriggers()
    result = Learned()
    loop = asyncio.get_running_loop()
    async with listening(config.serial, triggers) as owners:
        while not all(o.up for o in owners):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        for number, bay in enumerate(bays, start=1):
            emit({"event": "prompt", "bay": bay, "number": number, "of": len(bays)})
            deadline = loop.time() + bay_timeout_s
            while True:
                try:
                    sensor, _at = await asyncio.wait_for(
                        triggers.queue.get(), max(deadline - loop.time(), 0)
                    )
                except TimeoutError:
                    result.not_learned.append(bay)
                    emit({"event": "not-learned", "bay": bay, "waited_s": bay_timeout_s})
                    break
                if sensor in known and known[sensor] != bay:
                    emit({"event": "ignored", "bay": bay, "sensor": sensor, "is": known[sensor]})
                    continue
                fmt = triggers.formats[sensor]
                known[sensor] = bay
                result.learned[bay] = (sensor, fmt)
                on_learned(bay, sensor, fmt)
                emit({"event": "learned", "bay": bay, "sensor": sensor, "format": fmt})
                break
    return result


def _text_line(event: dict[str, object]) -> str:
    kind = event["event"]
    if kind == "prompt":
        return f"[{event['number']}/{event['of']}] drive onto bay {event['bay']} now"
    if kind == "learned":
        return f"    LEARNED  {event['bay']}: sensor {event['sensor']} ({event['format']})"
    if kind == "ignored":
        return (
            f"    ignored  sensor {event['sensor']} changed, but it is {event['is']}'s "
            "(a car moving elsewhere?): still waiting"
        )
    return (
        f"    NOTHING  {event['bay']}: no new sensor in {event['waited_s']:g} s (dead, out of "
        "range?): type its id into bays.csv, or learn it again with --bays"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the box's edge.toml (its serial lines)")
    parser.add_argument("--csv", required=True, help="bays.csv from provision-box; filled in")
    parser.add_argument("--out", help="write the filled CSV here instead of over --csv")
    parser.add_argument("--lot", help="only this lot")
    parser.add_argument("--bays", default="", help="only these bays, e.g. B007,B012 (again)")
    parser.add_argument(
        "--bay-timeout-s", type=float, default=120, help="wait this long per bay (120)"
    )
    parser.add_argument("--json", action="store_true", help="JSON lines for scripts")


def _bays_to_learn(args: argparse.Namespace, file: BaysFile) -> list[str]:
    rows = [r for r in file.rows if args.lot is None or r["lot"] == args.lot]
    if not rows:
        raise BadInput(f"{file.path}: no bay of lot {args.lot}")
    wanted = {b.strip() for b in args.bays.split(",") if b.strip()}
    if wanted:
        names = {r["bay"] for r in rows} | {f"{r['lot']}/{r['bay']}" for r in rows}
        unknown = wanted - names
        if unknown:
            raise BadInput(f"no such bay(s) in {file.path}: {', '.join(sorted(unknown))}")
        return [
            f"{r['lot']}/{r['bay']}"
            for r in rows
            if r["bay"] in wanted or f"{r['lot']}/{r['bay']}" in wanted
        ]
    return [f"{r['lot']}/{r['bay']}" for r in rows if not r.get("sensor")]


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.bay_timeout_s <= 0:
            raise BadInput("--bay-timeout-s must be positive")
        file = BaysFile.read(Path(args.csv))
        bays = _bays_to_learn(args, file)
        if foreign := sorted({bay.split("/")[0] for bay in bays} - config.lots.keys()):
            raise BadInput(
                f"{file.path}: lot {', '.join(foreign)} is not a lot of this box (its lots: "
                f"{', '.join(config.lots) or 'none'}): use this box's bays.csv from "
                "provision-box, or --lot"
            )
        check_serial_lines(config, args.config)
    except CommissionError as exc:
        print(f"learn-bays: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    out = Path(args.out) if args.out else file.path
    relearn = set(bays)
    known = {bay.sensor: f"{lot}/{bay_id}" for lot, bay_id, bay in config.bays()}
    for row in file.rows:
        name = f"{row['lot']}/{row['bay']}"
        if row.get("sensor") and name not in relearn:
            known[row["sensor"].upper()] = name
    row_of = {f"{r['lot']}/{r['bay']}": r for r in file.rows}
    records_path = bay_records.default_path(config)
    if not bays:
        print(f"learn-bays: every bay in {file.path} has a sensor already (--bays to redo one)")
        return EXIT_OK

    def on_learned(bay: str, sensor: str, fmt: str) -> None:
        row_of[bay].update(sensor=sensor, format=fmt)
        file.save(out)
        with contextlib.suppress(OSError):
            bay_records.save(records_path, [_record(bay, sensor, "PASS")])

    def emit(event: dict[str, object]) -> None:
        line = json.dumps(event, ensure_ascii=False) if args.json else _text_line(event)
        print(line, flush=True)

    result = Learned()
    started = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        result = asyncio.run(
            learn(
                config,
                bays,
                known=known,
                bay_timeout_s=args.bay_timeout_s,
                on_learned=on_learned,
                emit=emit,
            )
        )
    with contextlib.suppress(OSError):
        bay_records.save(records_path, [_record(b, "", "SILENT") for b in result.not_learned])
    stopped = [b for b in bays if b not in result.learned and b not in result.not_learned]
    summary = {
        "event": "summary",
        "learned": len(result.learned),
        "not_learned": result.not_learned,
        "not_walked": stopped,
        "csv": str(out),
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        emit(summary)
    else:
        print(
            f"\n{len(result.learned)} of {len(bays)} bay(s) learned into {out}"
            + (f"; not learned: {', '.join(result.not_learned)}" if result.not_learned else "")
            + (f"; not walked (stopped): {len(stopped)}" if stopped else "")
        )
        if result.not_learned:
            print(
                "next: put the id and format printed on each sensor not learned into its row "
                "(or learn it again with --bays), then import-bays"
            )
        elif result.learned:
            print(
                f"next: parkgrid edge import-bays {out} --config {args.config}"
                + (f" --lot {args.lot}" if args.lot else "")
            )
    return EXIT_OK if not result.not_learned and not stopped else EXIT_FAILED


def _record(bay: str, sensor: str, outcome: str) -> bay_records.BayRecord:
    return bay_records.BayRecord(
        bay=bay, sensor=sensor, outcome=outcome, at=time.time(), by="learn-bays"
    )
