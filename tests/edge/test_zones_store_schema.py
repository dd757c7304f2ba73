"""The zone store's schema versions: this release reads the files of the release before
versions (schema 0) and writes schema 1; ``migrate_down`` takes them back to what that
release reads, ``migrate_up`` forward again; and the boot check, rolling back to an older
release, migrates the zone store and the outbox down to what that release's code says it
knows (asked of its slot), keeping each file's owner and mode."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import asdict
from pathlib import Path

from edge import zones_store
from edge.outbox import Outbox
from edge.update.boot_check import boot_check
from edge.update.store_schemas import BEFORE_VERSIONED, known_versions, slot_versions
from edge.zones_store import ALERTS_FILE, SCHEDULE_FILE, AlertStore, OpenAlert, ScheduleStore
from firmware_protocols.uplink.models import ScheduleDocument
from tests.edge.test_outbox_line import body
from tests.edge.test_outbox_line import previous_reads as outbox_previous_reads
from tests.edge.test_zones import document
from tests.edge.update.test_boot_check import T0, make_box, on_trial

ALERT = OpenAlert(alert_id="a-1", alert_type="overstay", zone_id="M1", bay_id="S1",
                  since=T0, step=2)  # fmt: skip


def write_previous(data_dir: Path) -> None:
    """The two files as the release before schema versions wrote them (schema 0)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    doc = document(3, T0 - 60).model_dump(mode="json")
    (data_dir / SCHEDULE_FILE).write_text(
        json.dumps({"current": doc, "previous": None, "pending": None})
    )
    (data_dir / ALERTS_FILE).write_text(json.dumps([asdict(ALERT)]))


def previous_reads(data_dir: Path) -> tuple[int | None, list[str]]:
    """What the release before versions reads (its ScheduleStore and AlertStore, as they
    were): the version of the schedule in force and the open alerts' ids."""
    schedule = json.loads((data_dir / SCHEDULE_FILE).read_text())
    version = None
    if isinstance(schedule, dict) and schedule.get("current") is not None:
        version = ScheduleDocument.model_validate_json(json.dumps(schedule["current"])).version
    alerts = json.loads((data_dir / ALERTS_FILE).read_text())
    ids = [OpenAlert(**item).alert_id for item in alerts] if isinstance(alerts, list) else []
    return version, ids


def this_reads(data_dir: Path) -> tuple[int | None, list[str]]:
    current = ScheduleStore(data_dir).current
    return (current.version if current else None), list(AlertStore(data_dir).alerts)


def test_schema_0_files_are_read_and_written_again_as_schema_1(tmp_path: Path) -> None:
    write_previous(tmp_path)
    assert zones_store.file_version(tmp_path / ALERTS_FILE) == 0
    assert this_reads(tmp_path) == (3, ["a-1"])
    store = AlertStore(tmp_path)
    store.put(ALERT)  # a save writes the current schema
    schedule = ScheduleStore(tmp_path)
    schedule.stage(document(4, T0 - 30), T0)
    for name in (SCHEDULE_FILE, ALERTS_FILE):
        assert json.loads((tmp_path / name).read_text())["schema"] == 1
    assert this_reads(tmp_path) == (4, ["a-1"])


def test_the_previous_release_loses_schema_1_alerts_unless_migrated_down(tmp_path: Path) -> None:
    """Why ``migrate_down`` exists: schema 1's alerts file is no list to the older code."""
    write_previous(tmp_path)
    assert zones_store.migrate_up(tmp_path) == [SCHEDULE_FILE, ALERTS_FILE]
    assert previous_reads(tmp_path) == (3, [])  # the open alert would be forgotten
    assert zones_store.migrate_down(tmp_path) == [SCHEDULE_FILE, ALERTS_FILE]
    assert previous_reads(tmp_path) == (3, ["a-1"])
    assert this_reads(tmp_path) == (3, ["a-1"])  # and this release still reads it
    assert zones_store.migrate_down(tmp_path) == []  # already there: nothing rewritten
    assert zones_store.migrate_up(tmp_path) == [SCHEDULE_FILE, ALERTS_FILE]
    assert this_reads(tmp_path) == (3, ["a-1"])


def test_migrations_keep_the_files_mode(tmp_path: Path) -> None:
    write_previous(tmp_path)
    for name in (SCHEDULE_FILE, ALERTS_FILE):
        os.chmod(tmp_path / name, 0o640)
    zones_store.migrate_up(tmp_path)
    zones_store.migrate_down(tmp_path)
    for name in (SCHEDULE_FILE, ALERTS_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name


def test_a_newer_schema_is_read_for_what_it_still_holds(tmp_path: Path) -> None:
    write_previous(tmp_path)
    zones_store.migrate_up(tmp_path)
    for name in (SCHEDULE_FILE, ALERTS_FILE):
        raw = json.loads((tmp_path / name).read_text())
        (tmp_path / name).write_text(json.dumps({**raw, "schema": 2, "later": True}))
    assert this_reads(tmp_path) == (3, ["a-1"])


def _slot_that_knows(layout_dir: Path, versions: dict[str, int]) -> None:
    """A slot whose python answers the schema question as its code would."""
    python = layout_dir / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(f"#!/bin/sh\necho '{json.dumps(versions)}'\n")
    python.chmod(0o755)


def test_the_boot_check_rolling_back_migrates_the_stores_down_first(tmp_path: Path) -> None:
    layout = make_box(tmp_path / "opt", current="b")
    _slot_that_knows(layout.slot_dir("a"), {"outbox": 0, "zones": 0})
    on_trial(layout, boots=1, since=T0, gate_failed="not connected to the broker")
    data = tmp_path / "data"
    write_previous(data)
    zones_store.migrate_up(data)  # as the release on trial left them
    box = Outbox(Outbox.path_in(data))
    for i in range(3):
        box.append(body(i), document(1, T0).effective_from)
    box.flush()
    box.close()

    decision = boot_check(layout, now=T0 + 1, data_dir=data)
    assert decision.slot == "a" and layout.current_slot() == "a"
    assert "stores migrated down for it (as its code says): outbox to schema 0; " in decision.said
    assert f"{SCHEDULE_FILE} and {ALERTS_FILE} to schema 0" in decision.said
    assert previous_reads(data) == (3, ["a-1"])
    assert outbox_previous_reads(Outbox.path_in(data)) == ([1, 2, 3], 3)
    conn = sqlite3.connect(Outbox.path_in(data))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    # forward again: the newer release (installed again later) reads and migrates them
    assert this_reads(data) == (3, ["a-1"])
    again = Outbox(Outbox.path_in(data))
    assert [e.seq for e in again.pending()] == [1, 2, 3]
    again.close()


def test_a_release_from_before_versions_gets_its_known_schemas(tmp_path: Path) -> None:
    layout = make_box(tmp_path / "opt", current="b")  # slot a has no python: it cannot say
    on_trial(layout, boots=1, since=T0, gate_failed="no sensor heard")
    data = tmp_path / "data"
    write_previous(data)
    zones_store.migrate_up(data)
    Outbox(Outbox.path_in(data)).close()
    assert slot_versions(layout.slot_dir("a")) == (
        BEFORE_VERSIONED, "a release from before versioned stores"
    )  # fmt: skip
    decision = boot_check(layout, now=T0 + 1, data_dir=data)
    assert decision.slot == "a"
    assert "outbox" not in decision.said  # that release knows the outbox's schema 1
    assert previous_reads(data) == (3, ["a-1"])


def test_this_release_says_what_it_knows() -> None:
    assert known_versions() == {"outbox": 1, "zones": 1}
