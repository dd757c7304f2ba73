"""Quarantine retention: bounded by size and by age, oldest first, what is dropped counted."""

from __future__ import annotations

import time

from sqlalchemy import Engine, select

from central.db import schema as t
from central.ingest.service import IngestWriter
from central.quarantine.retention import QuarantineRetention, stored_total
from firmware_protocols.uplink import Topics
from site_model.site import SiteIndex
from tests.central.helpers import SITE, raw

P1 = Topics(SITE, "box-p1")
KIB = 1024


def _garbage(i: int, size: int = 64 * KIB) -> bytes:
    return f"garbage {i:06d} ".encode() + b"\xff" * (size - 15)


def _held(engine: Engine) -> tuple[list[int], int]:
    with engine.connect() as conn:
        ids = list(conn.execute(select(t.quarantine.c.id).order_by(t.quarantine.c.id)).scalars())
        return ids, stored_total(conn)[1]


def test_quarantine_retention_keeps_under_the_size_cap_oldest_first(
    engine: Engine, site_index: SiteIndex
) -> None:
    """200 x 64 KiB of garbage against a 1 MiB cap: the table never commits above the cap,
    the newest rows are the ones kept, and every dropped row is counted."""
    cap = 1024 * KIB
    writer = IngestWriter(
        engine=engine, site=site_index, retention=QuarantineRetention(max_bytes=cap)
    )
    for start in range(0, 200, 10):
        writer.process([raw(P1.event, _garbage(i)) for i in range(start, start + 10)])
        assert _held(engine)[1] <= cap
    ids, held = _held(engine)
    assert held <= cap
    assert writer.stats.quarantined == 200
    assert writer.stats.quarantine_dropped["size"] == 200 - len(ids)
    assert 10 <= len(ids) < 16
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # a contiguous tail: oldest went
    with engine.connect() as conn:
        newest = conn.execute(
            select(t.quarantine.c.payload).order_by(t.quarantine.c.id.desc()).limit(1)
        ).scalar()
    assert bytes(newest).startswith(b"garbage 000199")


def test_quarantine_retention_drops_rows_past_their_age(
    engine: Engine, site_index: SiteIndex
) -> None:
    """Rows received longer ago than max_age are dropped at the next batch and counted."""
    keeps_a_month = IngestWriter(engine=engine, site=site_index)
    old = time.time() - 7200
    keeps_a_month.process([raw(P1.event, b"old garbage", received_at=old) for _ in range(3)])
    assert len(_held(engine)[0]) == 3
    keeps_an_hour = IngestWriter(
        engine=engine, site=site_index, retention=QuarantineRetention(max_age_s=3600)
    )
    keeps_an_hour.process([raw(P1.event, b"new garbage")])
    ids, _ = _held(engine)
    assert len(ids) == 1
    assert keeps_an_hour.stats.quarantine_dropped["age"] == 3
