"""Quarantine that heals: a box provisioned after it spoke gets its messages ingested.

A message from a box the site file does not name is quarantined with the reason
``box '<id>' is not in the site file`` (``central.ingest.decode``). When the box is added
to the site file and central syncs it (at start), ``heal_quarantine`` takes those rows of
the boxes the site now names and feeds them to an ``IngestWriter`` as if they had just
arrived: statuses first, then events in seq order per box, then state documents, in
batches. Everything the ingest checks is checked again (a claim it cannot believe is
quarantined again, with that reason); a repeat is absorbed as a repeat. Each batch's rows
leave the quarantine after the batch is committed; a crash in between ingests them again
later as repeats. What is healed is bounded by the quarantine's retention: rows past its
age or size were dropped and are not coming back (the box still holds any event it was
never acked for, and sends it again).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import Engine, delete, select

from central.db import schema as t
from central.ingest.service import IngestWriter
from site_model.site import SiteIndex

log = logging.getLogger(__name__)

BATCH = 500


def unknown_box_reason(box_id: str) -> str:
    """The reason the ingest gives a message from a box the site file does not name."""
    return f"box {box_id!r} is not in the site file"


def _order(row: Any) -> tuple[int, str, float]:
    """Statuses, then events by box and seq, then the rest by receipt."""
    kind = row.topic.rsplit("/", 1)[-1]
    if kind == "status":
        return (0, "", row.received_at)
    if kind == "event":
        try:
            seq = float(json.loads(bytes(row.payload))["seq"])
        except (ValueError, KeyError, TypeError):
            seq = float("inf")  # the ingest refuses it again, with its reason
        return (1, row.box_id, seq)
    return (2, "", row.received_at)


def heal_quarantine(engine: Engine, site: SiteIndex, *, writer: IngestWriter | None = None) -> int:
    """Ingest the quarantined messages of boxes the site file now names; how many."""
    q = t.quarantine.c
    boxes = sorted(site.boxes)
    with engine.connect() as conn:
        rows = [
            row
            for row in conn.execute(
                select(q.id, q.topic, q.payload, q.payload_size, q.box_id, q.received_at, q.reason)
                .where(q.box_id.in_(boxes))
                .order_by(q.id)
            )
            if row.reason == unknown_box_reason(row.box_id) and row.payload_size == len(row.payload)
        ]
    if not rows:
        return 0
    writer = writer or IngestWriter(engine=engine, site=site, shared=True)
    rows.sort(key=_order)
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        writer.process([(row.topic, bytes(row.payload), row.received_at) for row in chunk])
        with writer.engine.begin() as conn:
            conn.execute(delete(t.quarantine).where(q.id.in_([row.id for row in chunk])))
    log.info(
        "ingested %d quarantined messages of boxes now in the site file (%s)",
        len(rows),
        ", ".join(sorted({row.box_id for row in rows})),
    )
    return len(rows)
