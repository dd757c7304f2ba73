"""The ledger's service: rules applied to a new capture, tow orders from bays, review
steps, listing with evidence, and export.

Every write runs in one transaction with the capture or the step that caused it; a
transaction that loses the race for the next ``seq`` (two writers on PostgreSQL) is run
again whole (:func:`retrying`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.exc import IntegrityError

from central import audit
from central.cases.routing import grid_of
from central.cases.service import open_case
from central.db import schema as t
from central.db.engine import writer
from central.errors import NotFound
from central.ledger import chain, rules, workflow
from site_model.site import Site

T = TypeVar("T")
RETRIES = 50


def retrying(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a write transaction; again after a key collision.

    SQLite serialises writers at BEGIN IMMEDIATE, so collisions happen on PostgreSQL only,
    when two appenders read the same head; the loser backs off a random few milliseconds
    (growing with each attempt) and runs again on the new head.
    """
    for attempt in range(RETRIES):
        try:
            with writer(engine).begin() as conn:
                return work(conn)
        except IntegrityError:
            if attempt == RETRIES - 1:
                raise
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise AssertionError("unreachable")  # pragma: no cover


# --- rules over a new capture ---------------------------------------------------------------


def _seen(conn: Connection, *, plate: str, place: str, since: float) -> list[rules.Seen]:
    rows = conn.execute(
        select(t.captures.c.id, t.captures.c.captured_at, t.captures.c.kind, t.captures.c.pictures)
        .where(
            t.captures.c.plate == plate,
            t.captures.c.place == place,
            t.captures.c.captured_at >= since,
            t.captures.c.held.is_(None),  # a held capture (camera clock) is no evidence yet
        )
        .order_by(t.captures.c.captured_at, t.captures.c.id)
    ).all()
    return [
        rules.Seen(
            capture_id=int(row.id),
            at=float(row.captured_at),
            departure=row.kind == "departure",
            pictures=tuple(p["sha256"] for p in json.loads(row.pictures)),
        )
        for row in rows
    ]


def _evidence(finding: rules.Finding, **extra: Any) -> dict[str, Any]:
    pictures: list[str] = []
    for item in finding.captures:
        pictures.extend(p for p in item.pictures if p not in pictures)
    return {
        "captures": [item.capture_id for item in finding.captures],
        "pictures": pictures,
        "from": round(finding.captures[0].at, 3),
        "until": round(finding.captures[-1].at, 3),
        **extra,
    }


def _exists(conn: Connection, dedup_key: str) -> bool:
    found = conn.execute(select(t.ledger.c.seq).where(t.ledger.c.dedup_key == dedup_key)).first()
    return found is not None


def _town_held_before(conn: Connection, site: Site, legacy_key: str) -> bool:
    """An entry under a key made before the town was part of it (a truck ban's, before
    2026-12-07) holds for the town its grid is in, and for any town when it has no grid."""
    found = conn.execute(
        select(t.ledger.c.grid_id).where(t.ledger.c.dedup_key == legacy_key)
    ).first()
    return found is not None and (found.grid_id is None or found.grid_id in site.grids)


def _overlapping(conn: Connection, *, rule_id: str, plate: str, place: str, start: float) -> bool:
    """A violation of this rule for this plate and place already covers this stay."""
    rows = conn.execute(
        select(t.ledger.c.evidence).where(
            t.ledger.c.rule_id == rule_id,
            t.ledger.c.plate == plate,
            t.ledger.c.place == place,
            t.ledger.c.ref_seq.is_(None),
        )
    ).all()
    for row in rows:
        evidence = json.loads(row.evidence)
        if evidence.get("until", 0) >= start:
            return True
    return False


def in_ban_area(site: Site, *, camera_id: str, place: str) -> bool:
    ban = site.rules.truck_ban
    camera = site.cameras.get(camera_id)
    if camera_id in ban.cameras or (camera is not None and camera.entry is not None):
        return True
    if place.startswith("segment:"):
        segment = place.split(":", 1)[1]
        return ban.segments is None or segment in ban.segments
    return False


def permit_for(conn: Connection, site: Site, *, plate: str, area: str, at: float) -> str | None:
    """The reason of a permit valid at ``at`` (start inclusive, end exclusive), or None."""
    for permit in site.permits:
        if (
            permit.plate.upper() == plate
            and permit.area == area
            and permit.valid_from.timestamp() <= at < permit.valid_until.timestamp()
        ):
            return permit.reason
    row = conn.execute(
        select(t.permits.c.reason).where(
            t.permits.c.plate == plate,
            t.permits.c.area == area,
            t.permits.c.valid_from <= at,
            t.permits.c.valid_until > at,
            t.permits.c.revoked_at.is_(None),
            # Issued for this town (a county's town site's id is the town's), or for all.
            or_(t.permits.c.town.is_(None), t.permits.c.town == site.id),
        )
    ).first()
    return None if row is None else str(row.reason)


def evaluate_capture(
    conn: Connection, site: Site, capture: dict[str, Any], *, now: float, town_speed: float = 1.0
) -> list[dict[str, Any]]:
    """Apply every rule to a newly stored capture; append what they find; say what happened."""
    plate = capture["plate"]
    place = capture["place"]
    if not plate or not capture["plate_readable"]:
        return [{"rule": None, "outcome": "unreadable plate: kept, no rule applies"}]
    why = rules.exemption(
        site,
        plate=plate,
        plate_color=capture["plate_color"],
        vehicle_class=capture["vehicle_class"],
    )
    if why is not None:
        return [{"rule": None, "outcome": "exempt", "reason": why}]
    outcomes: list[dict[str, Any]] = []
    tz = ZoneInfo(site.site.timezone)
    vehicle = {
        "plate": plate,
        "plate_color": capture["plate_color"],
        "vehicle_class": capture["vehicle_class"],
        "ga_plate_type": capture["ga_plate_type"],
        "place": place,
        "grid_id": grid_of(site, place),
    }
    at = float(capture["captured_at"])
    lfd = site.rules.left_for_days
    np_rule = site.rules.no_parking
    lookback = max(lfd.dwell_hours * 3600, lfd.days * 86400) + rules.LEFT_MAX_GAP_S
    seen = _seen(conn, plate=plate, place=place, since=at - lookback)

    segment = site.segments.get(place.split(":", 1)[1]) if place.startswith("segment:") else None
    if segment is not None and segment.capture and capture["kind"] != "departure":
        for finding in rules.no_parking(seen, np_rule):
            if capture["id"] not in [c.capture_id for c in finding.captures]:
                continue
            key = f"no_parking:{place}:{plate}:{finding.first.capture_id}"
            if _exists(conn, key) or _overlapping(
                conn, rule_id="no_parking", plate=plate, place=place, start=finding.first.at
            ):
                outcomes.append({"rule": "no_parking", "outcome": "already in the ledger"})
                continue
            row = chain.append(
                conn,
                at=now,
                kind="violation",
                rule_id="no_parking",
                rule_version=np_rule.version,
                evidence=chain.evidence_text(_evidence(finding, span_s=round(finding.span_s, 3))),
                fine_cny=np_rule.fine_cny,
                points=np_rule.points,
                status=workflow.FIRST_STATUS["violation"],
                dedup_key=key,
                **vehicle,
            )
            outcomes.append({"rule": "no_parking", "outcome": "violation", "seq": row["seq"]})

    ban = site.rules.truck_ban
    if (
        capture["plate_color"] in ban.plate_colors
        and capture["vehicle_class"] in ban.vehicle_classes
        and in_ban_area(site, camera_id=capture["camera_id"], place=place)
        and capture["kind"] != "departure"
    ):
        reason = permit_for(conn, site, plate=plate, area="truck_ban", at=at)
        day = dt.datetime.fromtimestamp(at, tz).date().isoformat()
        # Once a day per town: a county's towns each fine the truck their ban caught.
        key = f"truck_ban:{site.id}:{plate}:{day}"
        if reason is not None:
            outcomes.append({"rule": "truck_ban", "outcome": "permit", "reason": reason})
        elif _exists(conn, key) or _town_held_before(conn, site, f"truck_ban:{plate}:{day}"):
            outcomes.append({"rule": "truck_ban", "outcome": "already in the ledger"})
        else:
            this = [s for s in seen if s.capture_id == capture["id"]]
            finding = rules.Finding(captures=tuple(this))
            row = chain.append(
                conn,
                at=now,
                kind="violation",
                rule_id="truck_ban",
                rule_version=ban.version,
                evidence=chain.evidence_text(_evidence(finding, camera_id=capture["camera_id"])),
                fine_cny=ban.fine_cny,
                points=ban.points,
                status=workflow.FIRST_STATUS["violation"],
                dedup_key=key,
                **vehicle,
            )
            outcomes.append({"rule": "truck_ban", "outcome": "violation", "seq": row["seq"]})

    if capture["kind"] != "departure":
        for finding in rules.left_for_days(seen, lfd, tz):
            if capture["id"] not in [c.capture_id for c in finding.captures]:
                continue
            key = f"left_for_days:{place}:{plate}:{finding.first.capture_id}"
            if _exists(conn, key) or _overlapping(
                conn, rule_id="left_for_days", plate=plate, place=place, start=finding.first.at
            ):
                continue
            seq = order_tow(
                conn,
                site,
                now=now,
                town_speed=town_speed,
                evidence=_evidence(finding, span_s=round(finding.span_s, 3)),
                dedup_key=key,
                title=f"Tow {plate}: left at {place} since "
                f"{dt.datetime.fromtimestamp(finding.first.at, tz):%Y-%m-%d %H:%M}",
                **vehicle,
            )
            outcomes.append({"rule": "left_for_days", "outcome": "tow order", "seq": seq})
    return outcomes or [{"rule": None, "outcome": "no violation"}]


def order_tow(
    conn: Connection,
    site: Site,
    *,
    now: float,
    evidence: dict[str, Any],
    dedup_key: str,
    title: str,
    place: str,
    town_speed: float = 1.0,
    **vehicle: Any,
) -> int:
    """A tow order in the ledger, and a case (town-time limits) for the place's grid."""
    rule = site.rules.left_for_days
    row = chain.append(
        conn,
        at=now,
        kind="tow",
        rule_id="left_for_days",
        rule_version=rule.version,
        evidence=chain.evidence_text(evidence),
        fine_cny=0,
        points=0,
        status=workflow.FIRST_STATUS["tow"],
        dedup_key=dedup_key,
        place=place,
        **vehicle,
    )
    open_case(
        conn,
        site,
        kind="tow",
        source_ref=f"ledger:{row['seq']}",
        place=place,
        title=title,
        now=now,
        town_speed=town_speed,
        ledger_seq=row["seq"],
        detail={"plate": vehicle.get("plate")},
    )
    return int(row["seq"])


def sweep_bays(
    engine: Engine,
    site: Site,
    *,
    now: float | None = None,
    town_speed: float = 1.0,
    site_bays_only: bool = False,
) -> list[int]:
    """Tow orders for bays occupied over the rule's dwell: town hours, so / town_speed on wall.

    ``site_bays_only``: a county town's sweep, by its own rule, of its own lots' and zones'
    bays (the store holds every town's)."""
    now = time.time() if now is None else now
    limit = now - site.rules.left_for_days.dwell_hours * 3600 / town_speed
    tz = ZoneInfo(site.site.timezone)

    def work(conn: Connection) -> list[int]:
        made = []
        rows = conn.execute(
            select(t.bays.c.bay_id, t.bays.c.lot_id, t.bays.c.zone_id, t.bays.c.since).where(
                t.bays.c.state == "occupied", t.bays.c.since.is_not(None), t.bays.c.since <= limit
            )
        ).all()
        for row in rows:
            if site_bays_only and row.lot_id not in site.lots and row.zone_id not in site.zones:
                continue
            key = f"left_for_days:bay:{row.bay_id}:{round(row.since)}"
            if _exists(conn, key):
                continue
            place = f"lot:{row.lot_id}" if row.lot_id else f"zone:{row.zone_id}"
            since = dt.datetime.fromtimestamp(row.since, tz)
            made.append(
                order_tow(
                    conn,
                    site,
                    now=now,
                    town_speed=town_speed,
                    evidence={
                        "bay_id": row.bay_id,
                        "occupied_since": round(row.since, 3),
                        "dwell_s": round(now - row.since, 3),
                        "captures": [],
                        "pictures": [],
                    },
                    dedup_key=key,
                    title=f"Tow: bay {row.bay_id} occupied since {since:%Y-%m-%d %H:%M}",
                    place=place,
                    grid_id=grid_of(site, place),
                )
            )
        return made

    return retrying(engine, work)


# --- review -------------------------------------------------------------------------------


def _current(conn: Connection, seq: int) -> tuple[dict[str, Any], str]:
    first = conn.execute(select(t.ledger).where(t.ledger.c.seq == seq)).first()
    if first is None or first.ref_seq is not None or first.kind not in workflow.FIRST_STATUS:
        raise NotFound("ledger entry", str(seq))
    last = conn.execute(
        select(t.ledger.c.status)
        .where(t.ledger.c.ref_seq == seq)
        .order_by(t.ledger.c.seq.desc())
        .limit(1)
    ).scalar()
    return dict(first._mapping), str(last or first.status)


def act(
    engine: Engine,
    *,
    seq: int,
    action: str,
    reason: str | None,
    actor: str,
    now: float | None = None,
) -> dict[str, Any]:
    """One review step: a new ledger entry referring to the first; never an update."""
    now = time.time() if now is None else now

    def work(conn: Connection) -> None:
        first, status = _current(conn, seq)
        to = workflow.step(status, action, reason)
        chain.append(
            conn,
            at=now,
            kind="status",
            ref_seq=seq,
            rule_id=first["rule_id"],
            rule_version=first["rule_version"],
            plate=first["plate"],
            place=first["place"],
            grid_id=first["grid_id"],
            evidence=chain.evidence_text({}),
            status=to,
            reason=reason,
            actor=actor,
        )
        audit.record(
            conn, actor=actor, action=f"ledger.{action}", target=str(seq), detail={"reason": reason}
        )

    retrying(engine, work)
    return get_entry(engine, seq)


# --- reading ------------------------------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _entries_out(conn: Connection, firsts: list[Any]) -> list[dict[str, Any]]:
    seqs = [int(row.seq) for row in firsts]
    steps: dict[int, list[Any]] = {s: [] for s in seqs}
    capture_ids: set[int] = set()
    evidence = {}
    for row in firsts:
        evidence[int(row.seq)] = json.loads(row.evidence)
        capture_ids.update(evidence[int(row.seq)].get("captures", []))
    for chunk in range(0, len(seqs), 500):
        for row in conn.execute(
            select(t.ledger)
            .where(t.ledger.c.ref_seq.in_(seqs[chunk : chunk + 500]))
            .order_by(t.ledger.c.seq)
        ):
            steps[int(row.ref_seq)].append(row)
    captures: dict[int, dict[str, Any]] = {}
    ids = sorted(capture_ids)
    for chunk in range(0, len(ids), 500):
        for row in conn.execute(
            select(t.captures).where(t.captures.c.id.in_(ids[chunk : chunk + 500]))
        ):
            captures[int(row.id)] = {
                "id": int(row.id),
                "camera_id": row.camera_id,
                "captured_at": _iso(row.captured_at),
                "kind": row.kind,
                "plate": row.plate,
                "plate_color": row.plate_color,
                "vehicle_class": row.vehicle_class,
                "pictures": [
                    {**p, "url": f"/api/v1/pictures/{p['sha256']}"}
                    for p in json.loads(row.pictures)
                ],
            }
    out = []
    for row in firsts:
        seq = int(row.seq)
        history = steps[seq]
        status = history[-1].status if history else row.status
        ev = evidence[seq]
        out.append(
            {
                "seq": seq,
                "at": _iso(row.at),
                "kind": row.kind,
                "rule_id": row.rule_id,
                "rule_version": row.rule_version,
                "plate": row.plate,
                "plate_color": row.plate_color,
                "vehicle_class": row.vehicle_class,
                "ga_plate_type": row.ga_plate_type,
                "place": row.place,
                "grid_id": row.grid_id,
                "fine_cny": row.fine_cny,
                "points": row.points,
                "status": status,
                "actions": workflow.actions(status),
                "hash": row.hash,
                "prev_hash": row.prev_hash,
                "evidence": {
                    **ev,
                    "captures": [captures[c] for c in ev.get("captures", []) if c in captures],
                    "pictures": [
                        {"sha256": p, "url": f"/api/v1/pictures/{p}"}
                        for p in ev.get("pictures", [])
                    ],
                },
                "history": [
                    {
                        "seq": int(h.seq),
                        "at": _iso(h.at),
                        "status": h.status,
                        "reason": h.reason,
                        "actor": h.actor,
                        "hash": h.hash,
                    }
                    for h in history
                ],
            }
        )
    return out


def list_entries(
    engine: Engine,
    *,
    status: str | None = None,
    kind: str | None = None,
    rule_id: str | None = None,
    plate: str | None = None,
    grid_id: str | None = None,
    start: float | None = None,
    end: float | None = None,
    limit: int = 200,
    grids: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Violations and tow orders (newest first) with their current status and evidence;
    ``grids``: a county town's grids only (None: every entry)."""
    query = select(t.ledger).where(t.ledger.c.ref_seq.is_(None))
    if grids is not None:
        query = query.where(t.ledger.c.grid_id.in_(sorted(grids)))
    if kind is not None:
        query = query.where(t.ledger.c.kind == kind)
    if rule_id is not None:
        query = query.where(t.ledger.c.rule_id == rule_id)
    if plate is not None:
        query = query.where(t.ledger.c.plate == plate)
    if grid_id is not None:
        query = query.where(t.ledger.c.grid_id == grid_id)
    if start is not None:
        query = query.where(t.ledger.c.at >= start)
    if end is not None:
        query = query.where(t.ledger.c.at < end)
    if status is not None:
        # The status lives in the newest step, or in the first entry when there is none.
        latest = (
            select(t.ledger.c.ref_seq, t.ledger.c.seq, t.ledger.c.status)
            .where(t.ledger.c.ref_seq.is_not(None))
            .subquery()
        )
        newest = (
            select(latest.c.ref_seq, latest.c.status)
            .where(
                ~select(t.ledger.c.seq)
                .where(and_(t.ledger.c.ref_seq == latest.c.ref_seq, t.ledger.c.seq > latest.c.seq))
                .exists()
            )
            .subquery()
        )
        stepped = select(newest.c.ref_seq)
        query = query.where(
            or_(
                and_(t.ledger.c.seq.in_(select(newest.c.ref_seq).where(newest.c.status == status))),
                and_(t.ledger.c.seq.not_in(stepped), t.ledger.c.status == status),
            )
        )
    query = query.order_by(t.ledger.c.seq.desc()).limit(limit)
    with engine.connect() as conn:
        return _entries_out(conn, list(conn.execute(query).all()))


def get_entry(engine: Engine, seq: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(t.ledger).where(t.ledger.c.seq == seq, t.ledger.c.ref_seq.is_(None))
        ).first()
        if row is None:
            raise NotFound("ledger entry", str(seq))
        return _entries_out(conn, [row])[0]


EXPORT_COLUMNS = (*chain.FIELDS, "hash", "picture_hashes")


def export_rows(
    engine: Engine, *, start: float, end: float, grids: frozenset[str] | None = None
) -> list[list[Any]]:
    """Every ledger entry in [start, end), in chain order, with its evidence hashes;
    ``grids``: a county town's grids only (an entry's review steps carry its grid). Each
    row's hash is still checkable from its own fields and ``prev_hash``; a town's export
    skips the other towns' entries between them, so only the county's shows the chain."""
    query = select(t.ledger).where(t.ledger.c.at >= start, t.ledger.c.at < end)
    if grids is not None:
        query = query.where(t.ledger.c.grid_id.in_(sorted(grids)))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(t.ledger.c.seq)).all()
    out = []
    for row in rows:
        data = dict(row._mapping)
        pictures = json.loads(data["evidence"]).get("pictures", [])
        values = [data[name] for name in chain.FIELDS]
        values[chain.FIELDS.index("at")] = _iso(data["at"])
        out.append([*values, data["hash"], " ".join(pictures)])
    return out


def export_csv(
    engine: Engine, *, start: float, end: float, grids: frozenset[str] | None = None
) -> bytes:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(EXPORT_COLUMNS)
    out.writerows(export_rows(engine, start=start, end=end, grids=grids))
    return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read the UTF-8


def export_xlsx(
    engine: Engine, *, start: float, end: float, grids: frozenset[str] | None = None
) -> bytes:
    from openpyxl import Workbook

    from central.spreadsheet import append_values

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "ledger"
    append_values(sheet, EXPORT_COLUMNS)
    for row in export_rows(engine, start=start, end=end, grids=grids):
        append_values(sheet, row)  # a reason typed as "=..." stays text, never a formula
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
