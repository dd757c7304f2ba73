"""Permits issued at central (the site file's permits are read from the site): list,
issue, revoke, each audited.

In a county a permit belongs to the town it was issued under (``town``); one issued on the
county's unprefixed paths (county staff) has none and holds in every town. A town's view
lists its own and the county-wide ones, and revokes only its own."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine, or_, select

from central import audit
from central.db import schema as t
from central.db.engine import writer
from central.errors import Conflict, Invalid, NotFound
from firmware_protocols.cameras import normalise_plate
from site_model.site import Site


def list_permits(engine: Engine, site: Site, *, town: str | None = None) -> list[dict[str, Any]]:
    """The site file's permits, then those issued here (revoked ones flagged); for a
    county's ``town``, those issued for it or for every town."""
    out: list[dict[str, Any]] = [
        {**p.model_dump(mode="json"), "source": "site", "id": None} for p in site.permits
    ]
    query = select(t.permits).order_by(t.permits.c.id)
    if town is not None:
        query = query.where(or_(t.permits.c.town.is_(None), t.permits.c.town == town))
    with engine.connect() as conn:
        for row in conn.execute(query):
            out.append(
                {
                    "id": row.id,
                    "plate": row.plate,
                    "area": row.area,
                    "valid_from": dt.datetime.fromtimestamp(row.valid_from, dt.UTC).isoformat(),
                    "valid_until": dt.datetime.fromtimestamp(row.valid_until, dt.UTC).isoformat(),
                    "reason": row.reason,
                    "issued_by": row.issued_by,
                    "revoked": row.revoked_at is not None,
                    "source": "api",
                    "town": row.town,
                }
            )
    return out


def add_permit(
    engine: Engine,
    *,
    plate: str,
    area: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    reason: str,
    actor: str,
    town: str | None = None,
) -> dict[str, Any]:
    """Issue a permit for a normalised plate (for a county's ``town``, or None: every
    town); refuse an empty validity or a plate that normalises to nothing."""
    if valid_until <= valid_from:
        raise Invalid("valid_until is not after valid_from", field="valid_until")
    normalised, _ = normalise_plate(plate)
    if not normalised:
        raise Invalid("no plate", field="plate")
    with writer(engine).begin() as conn:
        result = conn.execute(
            t.permits.insert().values(
                plate=normalised,
                area=area,
                valid_from=valid_from.timestamp(),
                valid_until=valid_until.timestamp(),
                reason=reason,
                issued_by=actor,
                issued_at=time.time(),
                town=town,
            )
        )
        permit_id = int(result.inserted_primary_key[0])
        audit.record(
            conn,
            actor=actor,
            action="permit.add",
            target=normalised,
            detail={"area": area, "reason": reason, "town": town},
        )
    return {"id": permit_id, "plate": normalised}


def revoke_permit(engine: Engine, permit_id: int, *, actor: str, town: str | None = None) -> None:
    """Revoke a permit issued here; 404 if there is none (for a county's ``town``: none
    issued for that town), 409 if it is already revoked."""
    with writer(engine).begin() as conn:
        row = conn.execute(
            select(t.permits.c.revoked_at, t.permits.c.town).where(t.permits.c.id == permit_id)
        ).first()
        if row is None or (town is not None and row.town != town):
            raise NotFound("permit", str(permit_id))
        if row.revoked_at is not None:
            raise Conflict(f"permit {permit_id} is already revoked")
        conn.execute(
            t.permits.update().where(t.permits.c.id == permit_id).values(revoked_at=time.time())
        )
        audit.record(conn, actor=actor, action="permit.revoke", target=str(permit_id))
