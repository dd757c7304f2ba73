"""What commissioning proved about each bay, kept for the next command: walk-test -> doctor.

walk-test and learn-bays each see every bay's sensor react to a car; doctor then need not
wait a heartbeat window to hear those sensors again, and a sensor the walk found dead is
named at once instead of after ``--listen-s``. The record is a small JSON file in the box's
data directory (``<data_dir>/commission/bays.json``, the service user's, beside the
outbox), one entry per bay, the latest result winning::

    {"version": 1, "bays": {"P1/B001": {"sensor": "00A10001", "outcome": "PASS",
                                         "at": 1733500000.0, "by": "walk-test"}, ...}}

An entry counts only while it still describes the config: the same sensor on the same bay
(a re-import that moved a sensor makes it stale), and younger than doctor's
``--results-max-age-h``. learn-bays' "no new sensor reacted on this bay" has no sensor id
(``"sensor": ""``): it holds for whatever sensor is typed in for that bay afterwards.
A missing or unreadable file is an empty record: doctor then listens for every sensor.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.config import EdgeConfig

VERSION = 1
PASS = "PASS"


def default_path(config: EdgeConfig) -> Path:
    return config.data_dir / "commission" / "bays.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class BayRecord:
    bay: str  # "P1/B001"
    sensor: str  # the sensor the config mapped to the bay when it was walked
    outcome: str  # walk-test's outcome: PASS, WRONG, NOT MAPPED, SILENT
    at: float  # unix time
    by: str  # the command: walk-test, learn-bays
    heard: str | None = None  # the sensor that did react, when another one did

    def as_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "sensor": self.sensor,
            "outcome": self.outcome,
            "at": self.at,
            "by": self.by,
        }
        if self.heard is not None:
            doc["heard"] = self.heard
        return doc


def read_problem(path: Path) -> str | None:
    """Why the record at ``path`` cannot be read (it exists), or None (readable or absent)."""
    try:
        with path.open("rb"):
            return None
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"


def load(path: Path) -> dict[str, BayRecord]:
    """Bay name -> its latest record; {} when the file is missing or not ours."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return {}
    bays = doc.get("bays")
    records: dict[str, BayRecord] = {}
    if not isinstance(bays, dict):
        return records
    for bay, entry in bays.items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            heard = entry.get("heard")
            records[str(bay)] = BayRecord(
                bay=str(bay),
                sensor=str(entry["sensor"]),
                outcome=str(entry["outcome"]),
                at=float(entry["at"]),
                by=str(entry["by"]),
                heard=None if heard is None else str(heard),
            )
    return records


def save(path: Path, new: Iterable[BayRecord]) -> None:
    """Merge ``new`` into the file (latest per bay), atomically."""
    records = load(path)
    for record in new:
        records[record.bay] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": VERSION, "bays": {b: r.as_json() for b, r in sorted(records.items())}}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    # mkstemp makes it 0600: give it the mode a plain file gets (the umask's), so doctor run
    # as the service user reads what learn-bays run with sudo wrote
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current(
    records: Mapping[str, BayRecord], config: EdgeConfig, *, now: float, max_age_s: float
) -> dict[str, BayRecord]:
    """Sensor id -> its record, for records that still describe ``config`` and are fresh."""
    out: dict[str, BayRecord] = {}
    for lot_id, bay_id, bay in config.bays():
        record = records.get(f"{lot_id}/{bay_id}")
        if record is None or now - record.at > max_age_s:
            continue
        # learn-bays' "nothing new reacted on this bay" names no sensor: it holds for the
        # sensor typed in since (it was not heard there either).
        bay_failed = record.sensor == "" and record.outcome != PASS
        if record.sensor == bay.sensor or bay_failed:
            out[bay.sensor] = record
    return out
