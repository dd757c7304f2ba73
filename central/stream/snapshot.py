"""A resync's snapshot: the figures a subscription shows, as the database holds them now.

Each entry has the shape of the notice that sets that figure (``type`` included), so a
client applies a snapshot as it applies notices: ``{"lot": [...], "bay": [...], "sign":
[...], "zone": [...], "box": [...]}``, each list present only when the subscription takes
that kind (``bay`` for ``bay`` or ``bay_changed``), and scoped to its lots and their boxes.
Only figures that have a state are listed (a lot no box has reported yet is left out).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from central.db import schema as t
from central.stream.subscription import Subscription

LOT = ("free", "occupied", "unknown", "closed", "reported_capacity", "status", "trend",
       "state_ts", "updated_at")  # fmt: skip
ZONE = ("state", "occupied", "schedule_version", "window_start", "window_end",
        "next_transition", "state_ts", "updated_at")  # fmt: skip


def read_snapshot(engine: Engine, sub: Subscription) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        if sub.wants_kind("lot"):
            q = select(t.lots).where(t.lots.c.state_ts.is_not(None)).order_by(t.lots.c.lot_id)
            if sub.lots is not None:
                q = q.where(t.lots.c.lot_id.in_(sub.lots))
            out["lot"] = [
                {"type": "lot", "lot_id": r["lot_id"], **{k: r[k] for k in LOT}}
                for r in conn.execute(q).mappings()
            ]
        if sub.wants_kind("bay") or sub.wants_kind("bay_changed"):
            q = select(t.bays).where(t.bays.c.state.is_not(None)).order_by(t.bays.c.bay_id)
            if sub.lots is not None:
                q = q.where(t.bays.c.lot_id.in_(sub.lots))
            out["bay"] = [
                {
                    "type": "bay",
                    "bay_id": r["bay_id"],
                    "lot_id": r["lot_id"],
                    "zone_id": r["zone_id"],
                    "state": r["state"],
                    "since": r["since"],
                    "sensor_flags": r["sensor_flags"],
                }
                for r in conn.execute(q).mappings()
            ]
        if sub.wants_kind("sign"):
            q = select(t.signs.c.sign_id, t.signs.c.box_id, t.signs.c.up).order_by(
                t.signs.c.sign_id
            )
            if sub.boxes is not None:
                q = q.where(t.signs.c.box_id.in_(sub.boxes))
            out["sign"] = [
                {"type": "sign", "sign_id": s, "box_id": b, "up": up}
                for s, b, up in conn.execute(q).all()
            ]
        if sub.wants_kind("zone") and sub.lots is None:
            q = select(t.zones).where(t.zones.c.state_ts.is_not(None)).order_by(t.zones.c.zone_id)
            out["zone"] = [
                {"type": "zone", "zone_id": r["zone_id"], **{k: r[k] for k in ZONE}}
                for r in conn.execute(q).mappings()
            ]
        if sub.wants_kind("box"):
            q = select(t.boxes.c.box_id, t.boxes.c.online, t.boxes.c.status_changed_at).where(
                t.boxes.c.in_site
            )
            if sub.boxes is not None:
                q = q.where(t.boxes.c.box_id.in_(sub.boxes))
            out["box"] = [
                {"type": "box", "box_id": b, "online": bool(online), "at": at}
                for b, online, at in conn.execute(q.order_by(t.boxes.c.box_id)).all()
            ]
    if sub.places is not None:  # a county town's stream: its own figures only
        out = {kind: [n for n in notices if sub.in_town(n)] for kind, notices in out.items()}
    return out
