"""Quarantine that heals (issue 17, finding 8): a box provisioned after it spoke.

Events from a box the site file does not name are quarantined. When the box is added to
the site file and central syncs it (at start), its quarantined messages are ingested
again, its events in seq order, and leave the quarantine; other refusals stay.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from central.app import create_app
from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.service import IngestWriter
from central.quarantine.heal import heal_quarantine
from central.settings import CentralSettings
from central.sites.service import sync_site
from firmware_protocols.uplink import Topics
from site_model.site import Site, SiteIndex, load_site
from tests.central.helpers import SITE, SITE_FILE, bay_event, event_msg, raw

NEW_BOX = "box-p9"


def _after(tmp_path: Path) -> Path:
    """The small site's file once box-p9 is provisioned."""
    path = tmp_path / "after.toml"
    text = SITE_FILE.read_text(encoding="utf-8")
    path.write_text(text + f'\n[boxes.{NEW_BOX}]\nname = "New box"\n', encoding="utf-8")
    return path


def _quarantine_new_box(engine: Engine, before: Site) -> None:
    """box-p9 speaks before it is in the site file: seqs 3, 1, 2 and garbage."""
    writer = IngestWriter(engine=engine, site=SiteIndex.of(before), shared=False)
    writer.process(
        [event_msg(bay_event(NEW_BOX, seq, "P1-001")) for seq in (3, 1, 2)]
        + [raw(Topics(SITE, NEW_BOX).event, b"not json")]
    )


def _stored(engine: Engine) -> tuple[list[int], list[str], int | None]:
    with engine.connect() as conn:
        seqs = list(
            conn.execute(
                select(t.events.c.seq).where(t.events.c.box_id == NEW_BOX).order_by(t.events.c.id)
            ).scalars()
        )
        reasons = list(conn.execute(select(t.quarantine.c.reason)).scalars())
        mark = conn.execute(
            select(t.watermarks.c.acked_seq).where(t.watermarks.c.box_id == NEW_BOX)
        ).scalar()
    return seqs, reasons, mark


def test_provisioning_a_box_ingests_its_quarantined_events_in_seq_order(
    db_url: str, tmp_path: Path
) -> None:
    """Quarantined while unknown; once the site file has the box, heal_quarantine stores its
    events in seq order (3, 1, 2 arrived; 1, 2, 3 stored), moves its watermark, and leaves
    only the message that was refused for another reason."""
    engine = make_engine(db_url)
    upgrade(engine)
    before = load_site(SITE_FILE)
    sync_site(engine, before)
    _quarantine_new_box(engine, before)
    assert _stored(engine)[0] == []
    after = load_site(_after(tmp_path))
    sync_site(engine, after)
    healed = heal_quarantine(engine, SiteIndex.of(after))
    seqs, reasons, mark = _stored(engine)
    assert healed == 3
    assert seqs == [1, 2, 3]
    assert mark == 3
    assert len(reasons) == 1 and "not in the site file" not in reasons[0]
    assert heal_quarantine(engine, SiteIndex.of(after)) == 0  # nothing twice
    engine.dispose()


def test_central_restarted_with_the_box_in_its_site_file_heals(tmp_path: Path) -> None:
    """The real start-up: central started on the new site file ingests the quarantined
    events before it serves (at main they stayed quarantined for good)."""
    url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = make_engine(url)
    upgrade(engine)
    before = load_site(SITE_FILE)
    sync_site(engine, before)
    _quarantine_new_box(engine, before)
    settings = CentralSettings(
        site_file=_after(tmp_path), database_url=url, ingest=False, forecast_every_s=0
    )  # type: ignore[call-arg]
    with TestClient(create_app(settings)):
        seqs, reasons, mark = _stored(engine)
    assert seqs == [1, 2, 3]
    assert mark == 3
    assert len(reasons) == 1
    engine.dispose()
