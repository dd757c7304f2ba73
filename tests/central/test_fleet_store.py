"""The fleet's store side, on SQLite and PostgreSQL: push versions per box, the audit row,
and the state central derives from what the box reports."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine, select

from central.db import schema as t
from central.fleet.desired import desired_for
from central.fleet.service import fleet_status, push
from central.ingest.service import IngestWriter
from firmware_protocols.uplink import Topics
from firmware_protocols.uplink.models import ConfigApply, SiteConfigReport
from site_model.site import Site, SiteIndex, load_site
from tests.central.helpers import SITE, SITE_FILE, T0, birth, raw

URL = "mqtt://broker.town:1883"


def _report(engine: Engine, site: Site, box_id: str, report: SiteConfigReport) -> None:
    status = birth(box_id).model_copy(update={"site_config": report})
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    writer.process([raw(Topics(SITE, box_id).status, status)])


def test_push_versions_audit_and_the_states_central_shows(engine: Engine, site: Site) -> None:
    sent: list[tuple[str, bytes]] = []
    publish = lambda topic, payload, expiry: sent.append((topic, payload)) or True  # noqa: E731
    first = push(engine, site, box_ids=["box-p1"], mqtt_url=URL, actor="ada", publish=publish)
    again = push(engine, site, box_ids=["box-p1"], mqtt_url=URL, actor="ada", publish=publish)
    assert [p.version for p in first + again] == [1, 1]  # the same hash keeps its version
    other = URL.replace("1883", "1884")
    moved = push(engine, site, box_ids=["box-p1"], mqtt_url=other, actor="ada", publish=publish)
    assert moved[0].version == 2 and moved[0].hash != first[0].hash
    assert sent[0][0] == f"parkgrid/v1/{SITE}/box-p1/cmd/config-push"
    with engine.connect() as conn:
        audit = conn.execute(
            select(t.audit.c.actor, t.audit.c.target, t.audit.c.detail).where(
                t.audit.c.action == "fleet.config-push"
            )
        ).all()
    assert [(a, b, json.loads(c)["version"]) for a, b, c in audit] == [
        ("ada", "box-p1", 1), ("ada", "box-p1", 1), ("ada", "box-p1", 2)
    ]  # fmt: skip

    desired = desired_for(site, "box-p1", mqtt_url=other)
    row = {r.box_id: r for r in fleet_status(engine, site, mqtt_url=other)}["box-p1"]
    assert (row.state, row.desired_version, row.reported_hash) == ("pending", 2, None)

    old = desired_for(site, "box-p1", mqtt_url=URL)
    outcome = ConfigApply(
        version=2, hash=desired.hash, state="rolled_back", reason="not connected", ts=T0
    )
    _report(engine, site, "box-p1",
            SiteConfigReport(hash=old.hash, sections=old.sections, apply=outcome))  # fmt: skip
    row = {r.box_id: r for r in fleet_status(engine, site, mqtt_url=other)}["box-p1"]
    assert (row.state, row.reason, row.differs) == ("rolled back", "not connected", ["mqtt"])
    assert row.reported_hash == old.hash and row.applied_version == 2

    _report(engine, site, "box-p1", SiteConfigReport(hash=desired.hash, sections=desired.sections,
            apply=outcome.model_copy(update={"state": "confirmed", "reason": None})))  # fmt: skip
    row = {r.box_id: r for r in fleet_status(engine, site, mqtt_url=other)}["box-p1"]
    assert (row.state, row.differs, row.reason) == ("in sync", [], None)


def test_a_site_file_change_shows_what_differs(engine: Engine, site: Site, tmp_path: Path) -> None:
    now = desired_for(site, "box-s1", mqtt_url=URL)
    _report(engine, site, "box-s1", SiteConfigReport(hash=now.hash, sections=now.sections))
    changed = tmp_path / "site.toml"
    changed.write_text(SITE_FILE.read_text().replace("bays = 3\n", "bays = 3\ngrace_min = 7\n", 1))
    rows = {r.box_id: r for r in fleet_status(engine, load_site(changed), mqtt_url=URL)}
    assert (rows["box-s1"].state, rows["box-s1"].differs) == ("pending", ["zones.S1"])
    rows = {r.box_id: r for r in fleet_status(engine, site, mqtt_url=URL)}
    assert rows["box-s1"].state == "in sync"


def test_a_fleet_read_reads_the_pushes_in_one_query(engine: Engine, site: Site) -> None:
    """Every box's stored pushes come in one query, not one per box (nor per read of each)."""
    from sqlalchemy import event

    publish = lambda topic, payload, expiry: True  # noqa: E731
    push(engine, site, box_ids=sorted(site.boxes), mqtt_url=URL, actor="ada", publish=publish)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        rows = fleet_status(engine, site, mqtt_url=URL)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [row.desired_version for row in rows] == [1, 1, 1]
    on_commands = [s for s in statements if "FROM commands" in s]
    assert len(on_commands) == 1, statements
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, statements  # the boxes' statuses, and the pushes
