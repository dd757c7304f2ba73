"""A camera's clock: captures far from their receipt are held, alerted, and confirmed by a person.

::

    capture stated at T, received at R, |T - R| > camera.max_clock_skew_minutes
        -> stored with both times (camera_time T, clock_skew_s T - R), held "camera_clock"
        -> alert camera_clock for that camera (box_id "camera:<id>"), raised or kept raised
        -> no ledger rule reads it (the rules read only captures without a hold)
    a person confirms: POST /api/v1/captures/{id}/confirm-time {use: camera | received}
        -> captured_at set to the chosen time, hold cleared, audit row, rules applied now
    the camera's next capture in time again -> its camera_clock alert is resolved

The alert lives in the ``alerts`` table beside the edge's alerts, so the office sees it on
the alerts page and duty routing can open a case for it.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, select

from central.db import schema as t

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


def raise_alert(conn: Connection, *, camera_id: str, skew_s: float, now: float) -> None:
    """Raise (or keep raised, with the newest skew) the camera's clock alert."""
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
            },
        )
        return
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


def clear_alert(conn: Connection, *, camera_id: str, now: float) -> None:
    """Resolve the camera's clock alert: a capture came in on time again."""
    box_id, alert_id = alert_key(camera_id)
    conn.execute(
        t.alerts.update()
        .where(
            t.alerts.c.box_id == box_id,
            t.alerts.c.alert_id == alert_id,
            t.alerts.c.state != "resolved",
        )
        .values(state="resolved", resolved_by="central", resolved_at=now, updated_at=now)
    )
