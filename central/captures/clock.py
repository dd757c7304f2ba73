"""A camera's clock: captures far from their receipt are held, alerted, and confirmed by a person.

::

    capture stated at T, received at R, |T - R| > camera.max_clock_skew_minutes
        -> stored with both times (camera_time T, clock_skew_s T - R), held "camera_clock"
        -> alert camera_clock for that camera (box_id "camera:<id>"), raised or kept raised
        -> no ledger rule reads it (the rules read only captures without a hold)
    a person confirms: POST /api/v1/captures/{id}/confirm-time {use: camera | received}
        (or every held capture of a camera at once, oldest first, after an outage:
        POST /api/v1/cameras/{camera_id}/confirm-held)
        -> captured_at set to the chosen time, hold cleared, audit row, rules applied now
    the camera's next capture in time again -> its camera_clock alert is resolved

The alert lives in the ``alerts`` table beside the edge's alerts, so the office sees it on
the alerts page and duty routing can open a case for it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from central import audit
from central.db import schema as t
from central.errors import Conflict, Invalid, NotFound
from central.ledger.service import evaluate_capture, retrying
from site_model.site import Site

HOLD = "camera_clock"
ALERT_TYPE = "camera_clock"


def alert_key(camera_id: str) -> tuple[str, str]:
    return f"camera:{camera_id}"[:64], ALERT_TYPE


def _human(seconds: float) -> str:
    size = abs(seconds)
    ahead = "ahead of" if seconds > 0 else "behind"
    if size >= 86400:
        return f"{size / 86400:.1f} days {ahead}"
    if size >= 3600:
        return f"{size / 3600:.1f} hours {ahead}"
    return f"{size / 60:.0f} minutes {ahead}"


def raise_alert(
    conn: Connection,
    *,
    camera_id: str,
    skew_s: float,
    now: float,
    lot_id: str | None = None,
    zone_id: str | None = None,
) -> bool:
    """Raise (or keep raised, with the newest skew) the camera's clock alert; True when it
    was not open before."""
    box_id, alert_id = alert_key(camera_id)
    message = (
        f"camera {camera_id}'s clock is {_human(skew_s)} central: its captures are kept with "
        "both times and decide nothing until a person confirms the time"
    )
    key = and_(t.alerts.c.box_id == box_id, t.alerts.c.alert_id == alert_id)
    current = conn.execute(select(t.alerts.c.state).where(key)).first()
    if current is None:
        conn.execute(
            t.alerts.insert(),
            {
                "box_id": box_id,
                "alert_id": alert_id,
                "alert_type": ALERT_TYPE,
                "severity": "warning",
                "step": 0,
                "since": now,
                "message": message,
                "state": "raised",
                "raised_at": now,
                "updated_at": now,
                "last_seq": 0,
                "lot_id": lot_id,  # where the camera is: a case for the alert finds its grid
                "zone_id": zone_id,
            },
        )
        return True
    values: dict[str, object] = {"message": message, "updated_at": now}
    if current.state == "resolved":
        values.update(
            state="raised",
            since=now,
            raised_at=now,
            acknowledged_by=None,
            acknowledged_at=None,
            resolved_by=None,
            resolved_at=None,
        )
    conn.execute(t.alerts.update().where(key).values(**values))
    return bool(current.state == "resolved")


def clear_alert(conn: Connection, *, camera_id: str, now: float) -> bool:
    """Resolve the camera's clock alert: a capture came in on time again. True when an
    open alert was resolved."""
    box_id, alert_id = alert_key(camera_id)
    done = conn.execute(
        t.alerts.update()
        .where(
            t.alerts.c.box_id == box_id,
            t.alerts.c.alert_id == alert_id,
            t.alerts.c.state != "resolved",
        )
        .values(state="resolved", resolved_by="central", resolved_at=now, updated_at=now)
    )
    return bool(done.rowcount)


def _confirm(
    conn: Connection,
    site: Site,
    row: Any,
    *,
    use: str,
    reason: str | None,
    actor: str,
    now: float,
    town_speed: float,
) -> dict[str, Any]:
    at = float(row.camera_time if use == "camera" else row.received_at)
    conn.execute(
        t.captures.update().where(t.captures.c.id == row.id).values(held=None, captured_at=at)
    )
    audit.record(
        conn,
        actor=actor,
        action="capture.confirm_time",
        target=str(row.id),
        detail={"use": use, "reason": reason, "clock_skew_s": row.clock_skew_s},
    )
    data = {**dict(row._mapping), "captured_at": at, "held": None}
    outcomes = evaluate_capture(conn, site, data, now=now, town_speed=town_speed)
    return {"capture_id": int(row.id), "captured_at": at, "outcomes": outcomes}


def _use(use: str) -> None:
    if use not in ("camera", "received"):
        raise Invalid("use is 'camera' or 'received'", field="use")


def confirm_time(
    engine: Engine,
    site: Site,
    *,
    capture_id: int,
    use: str,
    reason: str | None,
    actor: str,
    now: float | None = None,
    town_speed: float = 1.0,
    cameras: frozenset[str] | None = None,
) -> dict[str, Any]:
    """A person says which time a held capture has (the camera's or its receipt); the rules
    then read it, in the same transaction as the record of who decided. ``cameras``: a
    county town's (another town's capture is not found)."""
    now = time.time() if now is None else now
    _use(use)

    def work(conn: Connection) -> dict[str, Any]:
        row = conn.execute(select(t.captures).where(t.captures.c.id == capture_id)).first()
        if row is None or (cameras is not None and row.camera_id not in cameras):
            raise NotFound("capture", str(capture_id))
        if row.held != HOLD:
            raise Conflict(f"capture {capture_id} is not held for its camera's clock")
        return _confirm(
            conn, site, row, use=use, reason=reason, actor=actor, now=now, town_speed=town_speed
        )

    return retrying(engine, work)


def confirm_held(
    engine: Engine,
    site: Site,
    *,
    camera_id: str,
    use: str,
    reason: str | None,
    actor: str,
    now: float | None = None,
    town_speed: float = 1.0,
) -> list[dict[str, Any]]:
    """Every held capture of one camera confirmed at once, oldest first (a camera catching
    up after an outage sends a backlog: one decision for all of it)."""
    now = time.time() if now is None else now
    _use(use)

    def work(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(t.captures)
            .where(t.captures.c.camera_id == camera_id, t.captures.c.held == HOLD)
            .order_by(t.captures.c.camera_time, t.captures.c.id)
        ).all()
        return [
            _confirm(
                conn, site, row, use=use, reason=reason, actor=actor, now=now, town_speed=town_speed
            )
            for row in rows
        ]

    return retrying(engine, work)


def held_captures(engine: Engine, *, limit: int = 500) -> list[dict[str, Any]]:
    """Captures waiting for a person to confirm their time, oldest first (times in
    RFC 3339, as the API shows them)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.captures.c.id,
                t.captures.c.camera_id,
                t.captures.c.plate,
                t.captures.c.plate_color,
                t.captures.c.vehicle_class,
                t.captures.c.place,
                t.captures.c.camera_time,
                t.captures.c.received_at,
                t.captures.c.clock_skew_s,
                t.captures.c.pictures,
            )
            .where(t.captures.c.held == HOLD)
            .order_by(t.captures.c.received_at, t.captures.c.id)
            .limit(limit)
        ).all()
    out = []
    for row in rows:
        data = dict(row._mapping)
        data["pictures"] = [
            {**p, "url": f"/api/v1/pictures/{p['sha256']}"} for p in json.loads(data["pictures"])
        ]
        for key in ("camera_time", "received_at"):
            data[key] = dt.datetime.fromtimestamp(data[key], dt.UTC).isoformat()
        out.append(data)
    return out
