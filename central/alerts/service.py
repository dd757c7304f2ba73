"""Alerts: the box raises and resolves them (ingest); staff acknowledge and resolve."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine, select

from central import audit
from central.alerts.models import AlertOut
from central.db import schema as t
from central.db.engine import writer
from central.errors import Conflict, NotFound


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _alert_out(row: Any) -> AlertOut:
    data = dict(row._mapping)
    for name in ("since", "raised_at", "updated_at", "acknowledged_at", "resolved_at"):
        data[name] = _dt(data[name])
    data.pop("last_seq", None)
    return AlertOut(**data)


def list_alerts(
    engine: Engine,
    *,
    state: str | None = None,
    box_id: str | None = None,
    limit: int = 200,
    boxes: frozenset[str] | None = None,
) -> list[AlertOut]:
    """Alerts, newest first; ``boxes``: a county town's boxes only (None: every alert)."""
    query = select(t.alerts).order_by(t.alerts.c.raised_at.desc(), t.alerts.c.id.desc())
    if boxes is not None:
        query = query.where(t.alerts.c.box_id.in_(sorted(boxes)))
    if state is not None:
        query = query.where(t.alerts.c.state == state)
    if box_id is not None:
        query = query.where(t.alerts.c.box_id == box_id)
    with engine.connect() as conn:
        return [_alert_out(row) for row in conn.execute(query.limit(limit))]


def get_alert(engine: Engine, alert_id: int) -> AlertOut:
    with engine.connect() as conn:
        row = conn.execute(select(t.alerts).where(t.alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound("alert", str(alert_id))
    return _alert_out(row)


def acknowledge(engine: Engine, *, alert_id: int, actor: str, note: str | None) -> AlertOut:
    now = time.time()
    with writer(engine).begin() as conn:
        row = conn.execute(select(t.alerts.c.state).where(t.alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound("alert", str(alert_id))
        if row.state != "raised":
            raise Conflict(f"alert {alert_id} is {row.state}; only a raised alert is acknowledged")
        conn.execute(
            t.alerts.update()
            .where(t.alerts.c.id == alert_id)
            .values(
                state="acknowledged", acknowledged_by=actor, acknowledged_at=now, updated_at=now
            )
        )
        audit.record(
            conn,
            actor=actor,
            action="alert.acknowledge",
            target=str(alert_id),
            detail={"note": note},
        )
    return get_alert(engine, alert_id)


def resolve(engine: Engine, *, alert_id: int, actor: str, note: str | None) -> AlertOut:
    now = time.time()
    with writer(engine).begin() as conn:
        row = conn.execute(select(t.alerts.c.state).where(t.alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound("alert", str(alert_id))
        if row.state == "resolved":
            raise Conflict(f"alert {alert_id} is already resolved")
        conn.execute(
            t.alerts.update()
            .where(t.alerts.c.id == alert_id)
            .values(state="resolved", resolved_by=actor, resolved_at=now, updated_at=now)
        )
        audit.record(
            conn, actor=actor, action="alert.resolve", target=str(alert_id), detail={"note": note}
        )
    return get_alert(engine, alert_id)
