"""``parkgrid edge inspect``: what a box holds on disk, read-only, for the technician.

"Is the data getting out?" is the first question on a site visit. This reads the box's
data directory without changing a byte (the box may be running) and says:

* the outbox (``outbox.sqlite``): events waiting for central's ack (count, bytes, seq
  range, the oldest's age), events dropped under the cap, retained state topics (how many
  not yet confirmed sent), and ``--events N`` of the newest events;
* the zone store (``zone-schedule.json``, ``zone-alerts.json``): the schedule version in
  force, one waiting for its time, the open zone alerts;
* commissioning: how many bays walk-test / learn-bays proved, and which failed.

The outbox is read through ``sqlite-utils`` on a read-only connection
(``file:...?mode=ro``): its table introspection and ``rows_where`` make this a few lines,
and nothing here is on the box's hot path. The box itself (``edge run``) does not import
sqlite-utils: its outbox writes with plain ``sqlite3`` ``executemany`` (measured in
bench/edge_replay.py), and the zone store is two small JSON files.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from edge.commission import bay_records
from edge.config import ConfigError, EdgeConfig, load_config
from edge.outbox import Outbox
from edge.zones_store import ALERTS_FILE, SCHEDULE_FILE, file_version

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _read_only(path: Path) -> Database:
    """A read-only connection. With no ``-wal`` file the box is not running: ``immutable``
    then keeps SQLite from creating ``-wal``/``-shm`` beside it (not a byte changes); while
    the box runs, they exist and a plain read-only reader sees its committed rows."""
    running = path.with_name(path.name + "-wal").exists()
    mode = "mode=ro" if running else "mode=ro&immutable=1"
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
    return Database(conn, execute_plugins=False)


def outbox_summary(path: Path, *, now: float, newest: int = 0) -> dict[str, Any]:
    """The outbox file's lanes, read-only; ``{"present": False}`` when there is none."""
    if not path.exists():
        return {"path": str(path), "present": False}
    db = _read_only(path)
    try:
        tables = set(db.table_names())
        missing = {"events", "state", "drops", "meta"} - tables
        if missing:
            return {
                "path": str(path),
                "present": True,
                "problem": f"not an outbox: no table(s) {', '.join(sorted(missing))}",
            }
        events = next(
            db.query(
                "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, min(seq) AS first, "
                "max(seq) AS last, min(created) AS oldest FROM events"
            )
        )
        state = next(
            db.query(
                "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, "
                "coalesce(sum(dirty), 0) AS dirty FROM state"
            )
        )
        dropped = next(db.query("SELECT coalesce(sum(count), 0) AS n FROM drops"))["n"]
        meta = {row["key"]: row["value"] for row in db["meta"].rows}
        recent = [
            {k: row[k] for k in ("seq", "event_id", "ts", "size")}
            for row in db["events"].rows_where(
                select="seq, event_id, ts, size", order_by="seq desc", limit=newest
            )
        ] if newest > 0 else []  # fmt: skip
    finally:
        db.conn.close()
    oldest = events["oldest"]
    return {
        "path": str(path),
        "present": True,
        "file_bytes": path.stat().st_size,
        "events_waiting": events["n"],
        "events_bytes": events["bytes"],
        "seq_range": [events["first"], events["last"]] if events["n"] else None,
        "oldest_waiting_s": None if oldest is None else round(now - oldest, 1),
        "events_dropped": dropped,
        "state_topics": state["n"],
        "state_bytes": state["bytes"],
        "state_unsent": state["dirty"],
        "meta": meta,
        "newest_events": recent,
    }


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"unreadable": str(exc)}


def zone_summary(data_dir: Path) -> dict[str, Any]:
    def version(doc: object) -> object:
        return doc.get("version") if isinstance(doc, dict) else None

    schedule = _json_file(data_dir / SCHEDULE_FILE)
    alerts = _json_file(data_dir / ALERTS_FILE)
    out: dict[str, Any] = {"schedule_file": schedule is not None}
    if isinstance(schedule, dict) and "unreadable" in schedule:
        out["problem"] = f"{SCHEDULE_FILE}: {schedule['unreadable']}"
    elif isinstance(schedule, dict):
        out["schedule_version"] = version(schedule.get("current"))
        out["schedule_pending"] = version(schedule.get("pending"))
    if isinstance(alerts, dict) and isinstance(alerts.get("alerts"), list):  # schema 1
        out["open_alerts"] = len(alerts["alerts"])
    elif isinstance(alerts, list):  # schema 0
        out["open_alerts"] = len(alerts)
    out["schema"] = file_version(data_dir / SCHEDULE_FILE)
    return out


def commission_summary(config: EdgeConfig, *, now: float) -> dict[str, Any]:
    path = bay_records.default_path(config)
    records = bay_records.load(path)
    current = bay_records.current(records, config, now=now, max_age_s=float("inf"))
    failed = sorted(
        f"{r.bay} ({r.outcome} in {r.by})" for r in current.values() if r.outcome != "PASS"
    )
    return {
        "bays": sum(1 for _ in config.bays()),
        "proven": sum(1 for r in current.values() if r.outcome == "PASS"),
        "failed": failed,
        "unreadable": bay_records.read_problem(path),
    }


def inspect_box(config: EdgeConfig, *, newest: int = 0, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {
        "box_id": config.box_id,
        "data_dir": str(config.data_dir),
        "outbox": outbox_summary(Outbox.path_in(config.data_dir), now=now, newest=newest),
        "zones": zone_summary(config.data_dir),
        "commissioning": commission_summary(config, now=now),
    }


def format_text(doc: dict[str, Any]) -> str:
    lines = [f"box {doc['box_id']}, data in {doc['data_dir']}"]
    box = doc["outbox"]
    if not box["present"]:
        lines.append(f"outbox: none yet at {box['path']} (the box has not run here)")
    elif "problem" in box:
        lines.append(f"outbox {box['path']}: {box['problem']}")
    else:
        age = box["oldest_waiting_s"]
        waiting = (
            f"{box['events_waiting']} event(s) waiting for central's ack "
            f"({box['events_bytes']} bytes, seq {box['seq_range'][0]}..{box['seq_range'][1]}, "
            f"the oldest {age:g} s old)"
            if box["events_waiting"]
            else "no event waiting for central's ack"
        )
        lines += [
            f"outbox {box['path']} ({box['file_bytes']} bytes): {waiting}",
            f"  dropped under the cap: {box['events_dropped']}; state topics: "
            f"{box['state_topics']} ({box['state_unsent']} not yet sent)",
        ]
        for event in box["newest_events"]:
            lines.append(f"  seq {event['seq']}  {event['ts']}  {event['event_id']}")
    zones = doc["zones"]
    if "problem" in zones:
        lines.append(f"zones: {zones['problem']}")
    elif zones["schedule_file"]:
        lines.append(
            f"zones: schedule version {zones.get('schedule_version')} in force"
            + (f", {zones['schedule_pending']} waiting" if zones.get("schedule_pending") else "")
            + f"; open alerts: {zones.get('open_alerts', 0)}"
        )
    else:
        lines.append("zones: no schedule received (the config's schedule applies)")
    done = doc["commissioning"]
    if done.get("unreadable"):
        lines.append(
            f"commissioning: {done['unreadable']} (run inspect as the service user, "
            "sudo -u parkgrid)"
        )
        return "\n".join(lines)
    lines.append(
        f"commissioning: {done['proven']} of {done['bays']} bay(s) proven by walk-test or "
        "learn-bays" + (f"; failed: {', '.join(done['failed'])}" if done["failed"] else "")
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.events < 0:
        print("inspect: --events must be 0 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        doc = inspect_box(config, newest=args.events)
    except sqlite3.Error as exc:
        print(f"inspect: cannot read the outbox: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc, ensure_ascii=False, indent=2) if args.json else format_text(doc))
    return EXIT_OK
