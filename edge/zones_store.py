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

Schema versions (``"schema"`` in each file), so that the two releases of a box's A/B slots
read each other's files (docs/fleet.md):

- 0, the files before versions: the schedule file is ``{current, previous, pending}``, the
  alerts file a bare list of alerts;
- 1: both files are objects carrying ``"schema": 1``; the alerts are under ``"alerts"``.

This release reads both (``_upgrade``) and writes 1. A release that knows only 0 reads a
version 1 schedule file (it ignores the key) but not a version 1 alerts file, so
``migrate_down`` takes both files back to 0; the boot check runs it when it rolls back to
such a release (``edge/update/store_schemas.py``). ``migrate_up`` rewrites them as 1.
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
SCHEMA_VERSION = 1


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


def _upgrade(raw: object, path: Path) -> dict[str, Any] | None:
    """A file's content of any known schema as version 1 (None when it has no known shape).
    A newer schema than this release knows is read for what it still recognises, logged."""
    if isinstance(raw, list):  # version 0 of the alerts file
        return {"schema": SCHEMA_VERSION, "alerts": raw}
    if not isinstance(raw, dict):
        return None
    schema = raw.get("schema", 0)
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        log.warning("%s has schema %r, newer than this release's %d: reading what it knows",
                    path, schema, SCHEMA_VERSION)  # fmt: skip
    return {**raw, "schema": SCHEMA_VERSION}


def _as_version(content: dict[str, Any], name: str, version: int) -> object:
    """A version 1 content written as ``version`` (0 or 1)."""
    if version >= SCHEMA_VERSION:
        return {**content, "schema": SCHEMA_VERSION}
    if name == ALERTS_FILE:
        return list(content.get("alerts") or [])
    return {key: value for key, value in content.items() if key != "schema"}


def _rewrite(path: Path, data: object) -> None:
    """``write_atomically`` keeping the file's owner and mode (the boot check runs as root,
    the box as its own user, which must still read and replace the file)."""
    before = path.stat()
    write_atomically(path, data)
    os.chmod(path, before.st_mode & 0o7777)
    if (before.st_uid, before.st_gid) != (os.geteuid(), os.getegid()):
        os.chown(path, before.st_uid, before.st_gid)


def file_version(path: Path) -> int | None:
    """The schema of a zone store file as it is on disk (None: absent or unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(raw, dict) and isinstance(raw.get("schema"), int):
        return int(raw["schema"])
    return 0


def migrate(data_dir: Path, version: int) -> list[str]:
    """Rewrite the zone store files of ``data_dir`` in schema ``version`` (0 or
    ``SCHEMA_VERSION``); the files changed, for the caller to say. Absent files are left."""
    if not 0 <= version <= SCHEMA_VERSION:
        raise ValueError(f"zone store schema {version}: this release knows 0 to {SCHEMA_VERSION}")
    changed = []
    for name in (SCHEDULE_FILE, ALERTS_FILE):
        path = data_dir / name
        if file_version(path) in (None, version):
            continue
        content = _upgrade(json.loads(path.read_text(encoding="utf-8")), path)
        if content is None:
            continue
        _rewrite(path, _as_version(content, name, version))
        changed.append(name)
    return changed


def migrate_up(data_dir: Path) -> list[str]:
    """The zone store files as ``SCHEMA_VERSION``."""
    return migrate(data_dir, SCHEMA_VERSION)


def migrate_down(data_dir: Path, version: int = 0) -> list[str]:
    """The zone store files as ``version``, for an older release."""
    return migrate(data_dir, version)


class ScheduleStore:
    """The schedule documents a box holds: in force, replaced, waiting."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SCHEDULE_FILE
        self.current: ScheduleDocument | None = None
        self.previous: ScheduleDocument | None = None
        self.pending: ScheduleDocument | None = None
        raw = _upgrade(read_json(self.path), self.path)
        if raw is not None:
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
            {"schema": SCHEMA_VERSION}
            | {
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
        raw = _upgrade(read_json(self.path), self.path)
        alerts = raw.get("alerts") if raw is not None else None
        if isinstance(alerts, list):
            for item in alerts:
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
        write_atomically(
            self.path,
            {"schema": SCHEMA_VERSION, "alerts": [asdict(a) for a in self.alerts.values()]},
        )
