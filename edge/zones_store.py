"""What the zone agent keeps on disk: the schedule versions and the open zone alerts.

Two small JSON files in the box's ``data_dir``, each rewritten whole (temporary file,
``fsync``, ``rename``) so a power cut leaves the old file or the new one, never half:

- ``zone-schedule.json``: the schedule document in force (``current``), the one it replaced
  (``previous``, for rollback) and one waiting for its effective time (``pending``);
- ``zone-alerts.json``: the zone alerts raised and not yet resolved, with the time their
  condition began and the ladder step reached, so a box restarted while a vendor overstays
  carries on with the same alert (same id, no step sent twice) instead of raising a new one.

A file that cannot be read is moved aside (``.corrupt``) and logged; the box then runs the
schedule of its config file, which is never worse than guessing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firmware_protocols.uplink.models import ScheduleDocument

log = logging.getLogger(__name__)

SCHEDULE_FILE = "zone-schedule.json"
ALERTS_FILE = "zone-alerts.json"


def write_atomically(path: Path, data: object) -> None:
    """Replace ``path`` with ``data`` as JSON, durably."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with_dir = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(with_dir)
    finally:
        os.close(with_dir)


def read_json(path: Path) -> Any:
    """A JSON file, or None when absent; one that cannot be read is moved aside (logged)."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        aside = path.with_suffix(path.suffix + ".corrupt")
        log.error("%s cannot be read (%s); moved to %s", path, exc, aside.name)
        os.replace(path, aside)
        return None


class ScheduleStore:
    """The schedule documents a box holds: in force, replaced, waiting."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SCHEDULE_FILE
        self.current: ScheduleDocument | None = None
        self.previous: ScheduleDocument | None = None
        self.pending: ScheduleDocument | None = None
        raw = read_json(self.path)
        if isinstance(raw, dict):
            try:
                self.current = self._doc(raw.get("current"))
                self.previous = self._doc(raw.get("previous"))
                self.pending = self._doc(raw.get("pending"))
            except ValidationError as exc:
                log.error("%s holds an invalid schedule, ignored: %s", self.path, exc)
                self.current = self.previous = self.pending = None

    @staticmethod
    def _doc(raw: object) -> ScheduleDocument | None:
        if raw is None:
            return None
        return ScheduleDocument.model_validate_json(json.dumps(raw))

    def save(self) -> None:
        write_atomically(
            self.path,
            {
                name: doc.model_dump(mode="json") if doc is not None else None
                for name, doc in (
                    ("current", self.current),
                    ("previous", self.previous),
                    ("pending", self.pending),
                )
            },
        )

    def stage(self, document: ScheduleDocument, now: float) -> None:
        """Take ``document``: in force at once if its time has come, else pending."""
        if document.effective_from.timestamp() <= now:
            self.previous, self.current = self.current, document
            if self.pending is not None and self.pending.version <= document.version:
                self.pending = None
        else:
            self.pending = document
        self.save()

    def promote(self, now: float) -> bool:
        """Put the pending document in force once its effective time has come."""
        if self.pending is None or self.pending.effective_from.timestamp() > now:
            return False
        self.previous, self.current, self.pending = self.current, self.pending, None
        self.save()
        return True

    def rollback(self) -> bool:
        """Go back to the document in force before the current one (or the config's)."""
        if self.current is None:
            return False
        self.current, self.previous = self.previous, None
        self.save()
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAlert:
    """A zone alert raised and not resolved: enough to carry it on after a restart."""

    alert_id: str
    alert_type: str
    zone_id: str
    bay_id: str
    since: float
    step: int


class AlertStore:
    """The open zone alerts, rewritten on every raise, step and resolution (rare events)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ALERTS_FILE
        self.alerts: dict[str, OpenAlert] = {}
        raw = read_json(self.path)
        if isinstance(raw, list):
            for item in raw:
                try:
                    alert = OpenAlert(**item)
                except TypeError:
                    log.error("%s: unreadable alert %r skipped", self.path, item)
                    continue
                self.alerts[alert.alert_id] = alert

    def put(self, alert: OpenAlert) -> None:
        self.alerts[alert.alert_id] = alert
        self._save()

    def drop(self, alert_id: str) -> None:
        if self.alerts.pop(alert_id, None) is not None:
            self._save()

    def _save(self) -> None:
        write_atomically(self.path, [asdict(a) for a in self.alerts.values()])
