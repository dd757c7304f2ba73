"""Generated history: bay changes written in bulk into the store, marked as generated.

A demo (or a trial) starts with weeks of history so every history view and the forecasts
have data on first open. The rows are ordinary ``bay_changed`` events, so every reader
(history, heat map, dwell, forecasts) uses them unchanged, and they are marked so nobody
mistakes them for measurements: box ``generated`` (no such box), boot id ``generated``,
``historical`` true, and a payload that says where they came from. The ack watermarks and
the ingest never see them (they walk real boxes only).

``write_generated_history`` refuses to run on a store that already holds generated rows
(it never doubles history) and ends every generated bay ``free`` at ``until``, so what
comes after starts clean.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select

from central.db import schema as t
from central.history import rollups
from site_model.site import Site

GENERATED = "generated"
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class GeneratedChange:
    at: float
    bay_id: str
    occupied: bool


class AlreadyGenerated(Exception):
    def __init__(self, rows: int) -> None:
        super().__init__(f"the store already holds {rows} generated history rows")
        self.rows = rows


def generated_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(t.events).where(t.events.c.box_id == GENERATED)
            ).scalar()
            or 0
        )


def write_generated_history(
    engine: Engine,
    site: Site,
    changes: Iterable[GeneratedChange],
    *,
    until: float,
    source: str,
    since: float | None = None,
) -> int:
    """Insert ``changes`` (time order) before ``until`` as generated events; rows written.

    With ``since``, every lot bay starts ``free`` a second before it, so the history knows
    every bay from its first moment (a bay no change touches is free, not unknown).
    """
    existing = generated_rows(engine)
    if existing:
        raise AlreadyGenerated(existing)
    lot_of = {bay: lot for lot, bay in site.lot_bays()}
    zone_of = {bay: zone for zone, bay in site.zone_bays()}
    payload = json.dumps({"generated": True, "source": source}, separators=(",", ":"))
    occupied: dict[str, bool] = {}
    seq = 0
    written = 0
    batch: list[dict[str, object]] = []

    def row(at: float, bay_id: str, state: str) -> dict[str, object]:
        nonlocal seq
        seq += 1
        # The bay's state before (central.history's chain): rows go in time order per bay.
        known = occupied.get(bay_id)
        prev = "unknown" if known is None else "occupied" if known else "free"
        return {
            "prev_state": prev,
            "box_id": GENERATED,
            "seq": seq,
            "boot_id": GENERATED,
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"parkgrid:generated:{seq}")),
            "kind": "bay_changed",
            "ts": at,
            "received_at": at,
            "historical": True,
            "lot_id": lot_of.get(bay_id),
            "zone_id": zone_of.get(bay_id),
            "bay_id": bay_id,
            "to_state": state,
            "payload": payload,
        }

    with engine.begin() as conn:
        if since is not None:
            for bay_id in sorted(lot_of):
                batch.append(row(since - 1.0, bay_id, "free"))
                occupied[bay_id] = False
        for change in changes:
            if change.at >= until or (change.bay_id not in lot_of and change.bay_id not in zone_of):
                continue
            if occupied.get(change.bay_id, False) == change.occupied:
                continue  # not a change
            batch.append(row(change.at, change.bay_id, "occupied" if change.occupied else "free"))
            occupied[change.bay_id] = change.occupied
            if len(batch) >= CHUNK:
                conn.execute(insert(t.events), batch)
                written += len(batch)
                batch = []
        for bay_id, is_occupied in sorted(occupied.items()):
            if is_occupied:  # end clean: the live town starts with its own state
                batch.append(row(until - 1.0, bay_id, "free"))
        if batch:
            conn.execute(insert(t.events), batch)
            written += len(batch)
        # Bulk rows bypass the ingest: their lots' rollups are rebuilt from the events.
        # By this site file's bays: the store may not have loaded it yet.
        rollups.rebuild(conn, lot_ids=sorted({lot for lot in lot_of.values() if lot}),
                        lot_of=lot_of.get)  # fmt: skip
    return written
