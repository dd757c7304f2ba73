"""Replace a lot's bays in a box config in place: ``parkgrid edge import-bays --config``.

The technician's loop is "fill bays.csv, import, walk, fix a row, import again". Appending
TOML (``>>``) breaks on the second import (``Cannot declare ('lots', 'P3', 'bays')
twice``) and cannot write the box's ``/etc/parkgrid/edge.toml`` (root-owned, 0640) from a
redirect run as the technician. So the import edits the file itself:

* ``replace_bays(text, lots)`` is pure: the config's text in, the new text out. It parses
  with ``tomlkit`` (which keeps comments, order and spacing) and sets each imported lot's
  ``bays`` table to the CSV's bays, one inline table per bay. Every other line of the file
  is kept as written. ``[lots.<id>.bays]`` sections left twice by an earlier ``>>``
  (which no TOML parser accepts) are dropped first, for the lots being imported only.
* ``write_in_place(path, text)`` validates the new text with the box's own rules before
  anything is written, then writes a temporary file in the same directory with the
  original's mode and owner, fsyncs it and renames it over the original: a reader (the
  service starting) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.items import Table

from edge.config import BayConfig, ConfigError, ConfigProblem, parse_config

_HEADER = re.compile(r"^\s*\[\[?\s*(?P<path>[^\]]+?)\s*\]\]?\s*(#.*)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class LotChange:
    """What an import did to one lot's bays."""

    lot: str
    before: int
    after: int
    added: int
    removed: int
    sensor_changed: int

    def line(self) -> str:
        return (
            f"lot {self.lot}: {self.after} bay(s) (was {self.before}): {self.added} added, "
            f"{self.removed} removed, {self.sensor_changed} with a new sensor or format"
        )


def _key_parts(path: str) -> list[str]:
    return [part.strip().strip("\"'") for part in path.split(".")]


def _drop_bays_sections(text: str, lot_ids: set[str]) -> str:
    """Remove every ``[lots.<id>.bays]`` / ``[lots.<id>.bays.<bay>]`` section of ``lot_ids``."""
    out: list[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        header = _HEADER.match(line)
        if header:
            parts = _key_parts(header["path"])
            dropping = (
                len(parts) >= 3
                and parts[0] == "lots"
                and parts[1] in lot_ids
                and parts[2] == "bays"
            )
        if not dropping:
            out.append(line)
    return "".join(out)


def _bay_item(bay: BayConfig) -> tomlkit.items.InlineTable:
    item = tomlkit.inline_table()
    item["sensor"] = bay.sensor
    item["format"] = bay.format
    if bay.heartbeat_timeout_s is not None:
        item["heartbeat_timeout_s"] = bay.heartbeat_timeout_s
    if bay.label is not None:
        item["label"] = bay.label
    return item


def _old_bays(text: str, lot_id: str) -> dict[str, tuple[str, str]] | None:
    """The lot's bays as the file had them (None: the lot was not there; {}: unreadable)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}
    lot = data.get("lots", {}).get(lot_id)
    if not isinstance(lot, dict):
        return None
    bays = lot.get("bays", {})
    if not isinstance(bays, dict):
        return {}
    return {
        str(k): (str(v.get("sensor", "")).upper(), str(v.get("format", "")))
        for k, v in bays.items()
        if isinstance(v, dict)
    }


def replace_bays(
    text: str, lots: Mapping[str, Mapping[str, BayConfig]], *, source: str = "edge.toml"
) -> tuple[str, list[LotChange]]:
    """``text`` with each of ``lots``' bays table replaced; ConfigError if it is not TOML."""
    changes: list[LotChange] = []
    before = {lot_id: _old_bays(text, lot_id) for lot_id in lots}
    cleaned = _drop_bays_sections(text, set(lots))
    try:
        doc = tomlkit.parse(cleaned)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(source, [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    if "lots" not in doc:
        doc.append("lots", tomlkit.table(is_super_table=True))
    all_lots = doc["lots"]
    if not isinstance(all_lots, Table):
        raise ConfigError(source, [ConfigProblem("lots", "is not a table of lots")])
    if unknown := [lot_id for lot_id in lots if lot_id not in all_lots]:
        # a typo, or a neighbouring box's lot from the town's CSV: never added here (the
        # office gives a box its lots: site file, provision-box)
        known = ", ".join(all_lots) or "none"
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    f"lots.{lot_id}",
                    f"lot {lot_id} is not a lot of this box (its lots: {known}): check "
                    "--lot and the CSV's lot column",
                )
                for lot_id in unknown
            ],
        )
    for lot_id, bays in lots.items():
        old = before[lot_id]
        lot_table = all_lots[lot_id]
        if not isinstance(lot_table, Table):
            raise ConfigError(source, [ConfigProblem(f"lots.{lot_id}", "is not a table")])
        table = tomlkit.table()
        for bay_id, bay in bays.items():
            table.append(bay_id, _bay_item(bay))
        table.add(tomlkit.nl())
        if "bays" in lot_table:
            del lot_table["bays"]
        lot_table.append("bays", table)
        new = {b: (bay.sensor, bay.format) for b, bay in bays.items()}
        old_bays = old or {}
        changes.append(
            LotChange(
                lot=lot_id,
                before=len(old_bays),
                after=len(new),
                added=len(new.keys() - old_bays.keys()),
                removed=len(old_bays.keys() - new.keys()),
                sensor_changed=sum(
                    1 for b in new.keys() & old_bays.keys() if new[b] != old_bays[b]
                ),
            )
        )
    return tomlkit.dumps(doc), changes


def write_in_place(path: Path, text: str) -> None:
    """Validate ``text`` as a box config, then atomically replace ``path``, mode and owner kept.

    Raises ConfigError (nothing written) when the new text is not a valid box config.
    """
    parse_config(tomllib.loads(text), source=str(path))
    atomic_write(path, text)


def atomic_write(path: Path, text: str, *, mode: int = 0o640, like: Path | None = None) -> None:
    """Replace (or create) ``path`` with ``text`` atomically: a temporary file in the same
    folder, the mode and owner of ``like`` (default: of the file replaced; ``mode`` for a new
    one), fsynced, renamed over it, the folder fsynced. A reader sees the old file or the new
    one, never half of one."""
    try:
        stat: os.stat_result | None = (like or path).stat()
    except FileNotFoundError:
        stat = None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), stat.st_mode & 0o7777 if stat is not None else mode)
            if stat is not None and (stat.st_uid, stat.st_gid) != (os.geteuid(), os.getegid()):
                # As root this keeps root:parkgrid; as the owner it keeps the group if we may.
                with contextlib.suppress(PermissionError):
                    os.fchown(handle.fileno(), stat.st_uid, stat.st_gid)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
