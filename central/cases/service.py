"""Cases: opened from edge alerts (ingest hook) and tow orders, moved through the loop by
staff, escalated by the sweep, and counted per grid and month."""

from __future__ import annotations

import datetime as dt
import io
import json
import statistics
import time
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, or_, select

from central import audit
from central.cases import workflow
from central.cases.routing import grid_of, place_of_alert
from central.db import schema as t
from central.db.engine import insert_ignore, writer
from central.errors import Invalid, NotFound
from central.townclock import IDENTITY, Mapping
from site_model.site import Site

SYSTEM = "system"


def open_case(
    conn: Connection,
    site: Site,
    *,
    kind: str,
    source_ref: str,
    place: str | None,
    title: str,
    now: float,
    detail: dict[str, Any] | None = None,
    ledger_seq: int | None = None,
    town_speed: float = 1.0,
) -> tuple[int, bool]:
    """Register a case (once per ``source_ref``); return ``(case id, newly opened)``.

    The site's ``[duty]`` limits are town time and ``now`` is the wall clock: with the town
    clock at ``town_speed`` (``central.townclock``; 1 in a real town) a limit of L town
    seconds is due L / town_speed wall seconds after ``now``, so the stored due times, the
    sweep and the ``overdue`` flag all stay on the one (wall) axis the rest of central uses.
    """
    existing = conn.execute(select(t.cases.c.id).where(t.cases.c.source_ref == source_ref)).scalar()
    if existing is not None:
        return int(existing), False
    duty = site.duty
    conn.execute(
        insert_ignore(conn.dialect.name, t.cases, ["source_ref"]),
        {
            "kind": kind,
            "source_ref": source_ref,
            "grid_id": grid_of(site, place),
            "place": place,
            "title": title[:2000],
            "detail": json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
            "ledger_seq": ledger_seq,
            "state": "registered",
            "registered_at": now,
            "ack_due_at": now + duty.ack_s(kind) / town_speed,
            "close_due_at": now + duty.close_s(kind) / town_speed,
            "escalation": 0,
            "reopened": 0,
            "updated_at": now,
        },
    )
    case_id = int(
        conn.execute(select(t.cases.c.id).where(t.cases.c.source_ref == source_ref)).scalar_one()
    )
    _history(conn, case_id, now, "register", None, "registered", SYSTEM, source_ref)
    return case_id, True


def _history(
    conn: Connection,
    case_id: int,
    at: float,
    action: str,
    frm: str | None,
    to: str,
    actor: str,
    note: str | None,
) -> None:
    conn.execute(
        t.case_history.insert(),
        {
            "case_id": case_id,
            "at": at,
            "action": action,
            "from_state": frm,
            "to_state": to,
            "actor": actor,
            "note": note,
        },
    )


def sync_alert_cases(
    engine: Engine,
    site: Site,
    *,
    keys: list[tuple[str, str]] | None = None,
    now: float | None = None,
    town_speed: float = 1.0,
    boxes: frozenset[str] | None = None,
) -> int:
    """Open cases for edge alerts that need a person; note later steps and resolutions.

    Reads the ``alerts`` table the ingest keeps, so it is idempotent and catches up after
    any interruption: the ingest calls it for the alerts of each batch (``keys``: box id,
    alert id), the sweep for all of them. ``town_speed`` scales the cases' limits
    (:func:`open_case`).
    """
    now = time.time() if now is None else now
    wanted = list(site.duty.alert_cases)
    query = select(t.alerts).where(t.alerts.c.alert_type.in_(wanted))
    if boxes is not None:  # a county town's sweep: its boxes' alerts, by its [duty]
        query = query.where(t.alerts.c.box_id.in_(sorted(boxes)))
    if keys is not None:
        if not keys:
            return 0
        query = query.where(
            or_(*(and_(t.alerts.c.box_id == b, t.alerts.c.alert_id == a) for b, a in keys))
        )
    opened = 0
    with writer(engine).begin() as conn:
        for alert in conn.execute(query).all():
            ref = f"alert:{alert.box_id}:{alert.alert_id}"
            case = conn.execute(
                select(t.cases.c.id, t.cases.c.state, t.cases.c.detail).where(
                    t.cases.c.source_ref == ref
                )
            ).first()
            if case is None:
                if alert.state == "resolved":
                    continue
                if (
                    alert.alert_type == "zone_overstay"
                    and alert.step < 1
                    and alert.severity in ("info", "warning")
                ):
                    continue  # the box warns first by itself; a person is needed once it escalates
                place = place_of_alert(
                    site,
                    box_id=alert.box_id,
                    lot_id=alert.lot_id,
                    zone_id=alert.zone_id,
                    bay_id=alert.bay_id,
                    sign_id=alert.sign_id,
                )
                open_case(
                    conn,
                    site,
                    kind=alert.alert_type,
                    source_ref=ref,
                    place=place,
                    title=alert.message or alert.alert_type,
                    now=now,
                    town_speed=town_speed,
                    detail={
                        "box_id": alert.box_id,
                        "alert_id": alert.alert_id,
                        "step": alert.step,
                        "severity": alert.severity,
                        "resolved": False,
                    },
                )
                opened += 1
                continue
            detail = json.loads(case.detail) if case.detail else {}
            changed = False
            if alert.step > detail.get("step", 0):
                _history(
                    conn,
                    case.id,
                    now,
                    "alert_step",
                    case.state,
                    case.state,
                    f"box:{alert.box_id}",
                    f"step {alert.step} ({alert.severity}): {alert.message}",
                )
                detail["step"] = alert.step
                changed = True
            if alert.state == "resolved" and not detail.get("resolved"):
                _history(
                    conn,
                    case.id,
                    now,
                    "alert_resolved",
                    case.state,
                    case.state,
                    alert.resolved_by or f"box:{alert.box_id}",
                    alert.message,
                )
                detail["resolved"] = True
                changed = True
            if changed:
                conn.execute(
                    t.cases.update()
                    .where(t.cases.c.id == case.id)
                    .values(detail=json.dumps(detail, ensure_ascii=False), updated_at=now)
                )
    return opened


def act(
    engine: Engine,
    *,
    case_id: int,
    action: str,
    actor: str,
    note: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    with writer(engine).begin() as conn:
        row = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).first()
        if row is None:
            raise NotFound("case", str(case_id))
        to = workflow.step(row.state, action)
        values: dict[str, Any] = {"state": to, "updated_at": now}
        if action in workflow.TIMESTAMP:
            values[workflow.TIMESTAMP[action]] = now
        if action == "handle" and row.acknowledged_at is None:
            values["acknowledged_at"] = now
        if action == "reopen":
            values.update(
                reopened=row.reopened + 1, handled_at=None, verified_at=None, closed_at=None
            )
        if action == "acknowledge" and row.acknowledged_at is not None:
            values.pop("acknowledged_at")
        conn.execute(t.cases.update().where(t.cases.c.id == case_id).values(**values))
        _history(conn, case_id, now, action, row.state, to, actor, note)
        audit.record(
            conn, actor=actor, action=f"case.{action}", target=str(case_id), detail={"note": note}
        )
    return get_case(engine, case_id, now=now)


def sweep(
    engine: Engine, site: Site, *, now: float | None = None, grids: frozenset[str] | None = None
) -> dict[str, int]:
    """Escalate overdue cases (one level each time a limit passes); ``grids``: only the
    cases of these grids (a county town's), else every case."""
    now = time.time() if now is None else now
    counts = {"escalated_ack": 0, "escalated_close": 0}
    open_states = list(workflow.OPEN_STATES)
    scope = [] if grids is None else [t.cases.c.grid_id.in_(sorted(grids))]
    with writer(engine).begin() as conn:
        late_ack = conn.execute(
            select(t.cases.c.id, t.cases.c.state).where(
                t.cases.c.state.in_(open_states),
                t.cases.c.acknowledged_at.is_(None),
                t.cases.c.ack_due_at < now,
                t.cases.c.escalation < 1,
                *scope,
            )
        ).all()
        for row in late_ack:
            conn.execute(
                t.cases.update().where(t.cases.c.id == row.id).values(escalation=1, updated_at=now)
            )
            _history(
                conn,
                row.id,
                now,
                "escalate",
                row.state,
                row.state,
                SYSTEM,
                "not acknowledged in time",
            )
            counts["escalated_ack"] += 1
        late_close = conn.execute(
            select(t.cases.c.id, t.cases.c.state).where(
                t.cases.c.state.in_(open_states),
                t.cases.c.close_due_at < now,
                t.cases.c.escalation < 2,
                *scope,
            )
        ).all()
        for row in late_close:
            conn.execute(
                t.cases.update().where(t.cases.c.id == row.id).values(escalation=2, updated_at=now)
            )
            _history(
                conn, row.id, now, "escalate", row.state, row.state, SYSTEM, "not closed in time"
            )
            counts["escalated_close"] += 1
    return counts


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _case_out(row: Any, history: list[Any], now: float) -> dict[str, Any]:
    data = dict(row._mapping)
    out: dict[str, Any] = {k: v for k, v in data.items() if not k.endswith("_at")}
    for key, value in data.items():
        if key.endswith("_at"):
            out[key] = _iso(value)
    out["detail"] = json.loads(data["detail"]) if data["detail"] else None
    out["overdue"] = _overdue(data, now)
    out["actions"] = workflow.actions(data["state"])
    out["history"] = [
        {
            "at": _iso(h.at),
            "action": h.action,
            "from_state": h.from_state,
            "to_state": h.to_state,
            "actor": h.actor,
            "note": h.note,
        }
        for h in history
    ]
    return out


def _overdue(data: dict[str, Any], now: float) -> bool:
    acked = data["acknowledged_at"] if data["acknowledged_at"] is not None else now
    closed = data["closed_at"] if data["closed_at"] is not None else now
    return bool(acked > data["ack_due_at"] or closed > data["close_due_at"])


def get_case(engine: Engine, case_id: int, *, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    with engine.connect() as conn:
        row = conn.execute(select(t.cases).where(t.cases.c.id == case_id)).first()
        if row is None:
            raise NotFound("case", str(case_id))
        history = conn.execute(
            select(t.case_history)
            .where(t.case_history.c.case_id == case_id)
            .order_by(t.case_history.c.at, t.case_history.c.id)
        ).all()
    return _case_out(row, list(history), now)


def list_cases(
    engine: Engine,
    *,
    state: str | None = None,
    grid_id: str | None = None,
    kind: str | None = None,
    overdue: bool | None = None,
    limit: int = 200,
    grids: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Cases, newest first; ``grids``: a county town's grids only (None: every case)."""
    now = time.time()
    query = select(t.cases).order_by(t.cases.c.registered_at.desc(), t.cases.c.id.desc())
    if grids is not None:
        query = query.where(t.cases.c.grid_id.in_(sorted(grids)))
    if state is not None:
        query = query.where(t.cases.c.state == state)
    if grid_id is not None:
        query = query.where(t.cases.c.grid_id == grid_id)
    if kind is not None:
        query = query.where(t.cases.c.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit)).all()
    out = [_case_out(row, [], now) for row in rows]
    if overdue is not None:
        out = [case for case in out if case["overdue"] is overdue]
    for case in out:
        del case["history"]
    return out


def month_range(month: str, tz: dt.tzinfo) -> tuple[float, float]:
    """``YYYY-MM`` as epoch seconds [start, end) in the site's time zone."""
    try:
        first = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=tz)
    except ValueError:
        raise Invalid(f"month {month!r} is not YYYY-MM", field="month") from None
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first.timestamp(), following.timestamp()


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def town_month(town_now: float, tz: dt.tzinfo) -> str:
    """The month (``YYYY-MM``) a town time falls in, in the site's time zone."""
    return dt.datetime.fromtimestamp(town_now, tz).strftime("%Y-%m")


def grid_report(
    engine: Engine,
    site: Site,
    *,
    month: str | None = None,
    town: Mapping = IDENTITY,
    now: float | None = None,
    site_grids_only: bool = False,
) -> dict[str, Any]:
    """Per grid: cases, median time to acknowledge and close, overdue, repeat places.

    ``site_grids_only``: a county town's report, of its own grids' cases and entries only.

    The month and the medians are the town's (``town`` maps the stored wall times): a demo's
    month is the town's month (the default: the town's month now) and its medians are town
    seconds (wall seconds x speed). In a real town ``town`` is the identity."""
    now = time.time() if now is None else now
    tz = ZoneInfo(site.site.timezone)
    month = town_month(town.town(now), tz) if month is None else month
    town_start, town_end = month_range(month, tz)
    start, end = town.wall(town_start), town.wall(town_end)
    with engine.connect() as conn:
        cases = conn.execute(
            select(t.cases).where(
                and_(t.cases.c.registered_at >= start, t.cases.c.registered_at < end)
            )
        ).all()
        violations = conn.execute(
            select(t.ledger.c.grid_id, t.ledger.c.kind).where(
                t.ledger.c.kind.in_(["violation", "tow"]),
                t.ledger.c.at >= start,
                t.ledger.c.at < end,
            )
        ).all()
    if site_grids_only:
        cases = [row for row in cases if row.grid_id in site.grids]
        violations = [row for row in violations if row.grid_id in site.grids]
    grids: list[str | None] = list(site.grids)
    if any(row.grid_id is None for row in cases):
        grids.append(None)
    by_grid: dict[str | None, list[Any]] = {g: [] for g in grids}
    for row in cases:
        by_grid.setdefault(row.grid_id, []).append(row)
    ledger_counts = Counter((row.grid_id, row.kind) for row in violations)
    out = []
    for grid_id, rows in by_grid.items():
        places = Counter(row.place for row in rows if row.place)
        entry = site.grids.get(grid_id) if grid_id else None
        out.append(
            {
                "grid_id": grid_id,
                "name": entry.name if entry else "(no grid)",
                "kind": entry.kind.value if entry else None,
                "duty_role": entry.duty_role if entry else None,
                "cases": len(rows),
                "by_kind": dict(Counter(row.kind for row in rows)),
                "closed": sum(1 for row in rows if row.state == "closed"),
                "open": sum(1 for row in rows if row.state in workflow.OPEN_STATES),
                "median_ack_s": _median(
                    [
                        (r.acknowledged_at - r.registered_at) * town.speed
                        for r in rows
                        if r.acknowledged_at
                    ]
                ),
                "median_close_s": _median(
                    [(r.closed_at - r.registered_at) * town.speed for r in rows if r.closed_at]
                ),
                "overdue": sum(1 for row in rows if _overdue(dict(row._mapping), now)),
                "escalated": sum(1 for row in rows if row.escalation > 0),
                "reopened": sum(row.reopened for row in rows),
                "repeat_places": {p: n for p, n in sorted(places.items()) if n >= 2},
                "violations": ledger_counts[(grid_id, "violation")],
                "tow_orders": ledger_counts[(grid_id, "tow")],
            }
        )
    return {
        "month": month,
        "timezone": site.site.timezone,
        "town_speed": town.speed,  # the medians are town seconds
        "grids": out,
    }


REPORT_COLUMNS = (
    ("grid_id", "grid"),
    ("name", "name"),
    ("kind", "kind"),
    ("duty_role", "duty role"),
    ("cases", "cases"),
    ("closed", "closed"),
    ("open", "open"),
    ("median_ack_s", "median time to acknowledge (s)"),
    ("median_close_s", "median time to close (s)"),
    ("overdue", "overdue"),
    ("escalated", "escalated"),
    ("reopened", "reopened"),
    ("repeat_places", "repeat places"),
    ("violations", "violations"),
    ("tow_orders", "tow orders"),
)


def grid_report_xlsx(report: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    from central.spreadsheet import append_values

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"grids {report['month']}"
    append_values(sheet, [label for _, label in REPORT_COLUMNS])
    for grid in report["grids"]:
        row = []
        for key, _ in REPORT_COLUMNS:
            value = grid[key]
            if isinstance(value, dict):
                value = "; ".join(f"{k} x{v}" for k, v in value.items())
            row.append(value)
        append_values(sheet, row)  # grid and place names stay text, never formulas
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
