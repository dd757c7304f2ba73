"""Rollouts in the store: start one, read them, halt, resume, roll back (each audited).

The admin's actions live here, each in one transaction with its audit row; the engine
(``rollout_engine``) moves the rows on. A town has at most one running rollout.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select, text

from central import audit
from central.db import schema as t
from central.db.engine import writer
from central.errors import Conflict, Invalid, NotFound
from central.fleet.rollout_models import RolloutBoxOut, RolloutIn, RolloutOut
from central.fleet.rollout_plan import (
    IN_FLIGHT,
    WAVE_NAMES,
    PlanError,
    check_options,
    parse_window,
    runs_confirmed,
    waves,
)
from central.leases import lease_key
from central.releases import store as releases
from firmware_protocols.uplink.models import InstallRelease
from site_model.site import Site


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def box_statuses(conn: Connection, box_ids: list[str]) -> dict[str, tuple[bool, dict[str, Any]]]:
    """(online, the stored birth document) of each box, in one query."""
    rows = conn.execute(
        select(t.boxes.c.box_id, t.boxes.c.online, t.boxes.c.status_json).where(
            t.boxes.c.box_id.in_(box_ids)
        )
    )
    return {box: (bool(online), json.loads(doc) if doc else {}) for box, online, doc in rows}


def _release(releases_dir: Path, version: str) -> releases.StoredRelease:
    found = releases.get(releases_dir, version)
    if found is None:
        raise Invalid(
            f"version: release {version!r} is not stored at central (parkgrid central release "
            "add); nothing started",
            field="version",
        )
    try:  # what the engine will send: refused now, not at each beat later
        InstallRelease(version=found.version, sha256=f"sha256:{found.sha256}")
    except ValidationError:
        raise Invalid(
            f"version: {version!r} is no release version a box takes (digits and dots, e.g. "
            "1.4.0, firmware_protocols/uplink/models/commands.py); nothing started",
            field="version",
        ) from None
    return found


def _running(conn: Connection, town: str) -> int | None:
    """The town's running rollout. On PostgreSQL the town is held until the transaction
    ends (an advisory transaction lock), so two admins starting or resuming at once take
    turns and the second sees the first's: one running rollout per town."""
    if conn.dialect.name == "postgresql":
        key = lease_key(f"rollout-town:{town}")
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    return conn.execute(
        select(t.rollouts.c.id).where(t.rollouts.c.town == town, t.rollouts.c.state == "running")
    ).scalar()


def _insert(
    conn: Connection,
    *,
    request: RolloutIn,
    release: releases.StoredRelease,
    boxes: list[str],
    kind: str,
    rollback_of: int | None,
    actor: str,
) -> int:
    now = time.time()
    window = parse_window(request.window)
    statuses = box_statuses(conn, boxes)
    online = {box: statuses.get(box, (False, {}))[0] for box in boxes}
    wave_of = waves(boxes, online, canary=request.canary, share=request.share)
    rollout_id = conn.execute(
        t.rollouts.insert()
        .values(
            town=request.town,
            version=release.version,
            sha256=f"sha256:{release.sha256}",
            kind=kind,
            rollback_of=rollback_of,
            state="running",
            wave=min(wave_of.values(), default=0),
            canary=request.canary,
            share=request.share,
            max_failures=request.max_failures,
            failure_base=0,
            confirm_timeout_s=request.confirm_timeout_s,
            trial_window_s=request.trial_window_s,
            window=window.text,
            reason=None,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        .returning(t.rollouts.c.id)
    ).scalar_one()
    rows = []
    for box in boxes:
        done = runs_confirmed(statuses.get(box, (False, {}))[1], release.version)
        rows.append(
            {
                "rollout_id": rollout_id,
                "box_id": box,
                "wave": wave_of[box],
                "state": "skipped" if done else "waiting",
                "reason": f"already runs {release.version}, confirmed" if done else None,
                "updated_at": now,
            }
        )
    if rows:
        conn.execute(t.rollout_boxes.insert(), rows)
    audit.record(
        conn,
        actor=actor,
        action="fleet.rollout" if kind == "rollout" else "fleet.rollback",
        target=str(rollout_id),
        detail={
            "version": release.version,
            "town": request.town,
            "boxes": len(boxes),
            "canary": request.canary,
            "share": request.share,
            "max_failures": request.max_failures,
            "confirm_timeout_s": request.confirm_timeout_s,
            "trial_window_s": request.trial_window_s,
            "window": window.text,
            "rollback_of": rollback_of,
        },
    )
    return int(rollout_id)


def start(
    engine: Engine, site: Site, *, releases_dir: Path, request: RolloutIn, actor: str
) -> RolloutOut:
    """Start a rollout of a stored release to every box of the town (audited)."""
    if request.town != site.id:
        raise Invalid(
            f"town: no town {request.town!r} at this central (it serves {site.id!r}); "
            "nothing started",
            field="town",
        )
    try:
        check_options(
            canary=request.canary,
            share=request.share,
            max_failures=request.max_failures,
            confirm_timeout_s=request.confirm_timeout_s,
            trial_window_s=request.trial_window_s,
        )
        parse_window(request.window)
    except PlanError as exc:
        raise Invalid(f"{exc}; nothing started", field=exc.field) from None
    release = _release(releases_dir, request.version)
    with writer(engine).begin() as conn:
        running = _running(conn, request.town)
        if running is not None:
            raise Conflict(
                f"rollout {running} is running in {request.town}: halt it (or roll it back) "
                "first; nothing started"
            )
        rollout_id = _insert(
            conn,
            request=request,
            release=release,
            boxes=sorted(site.boxes),
            kind="rollout",
            rollback_of=None,
            actor=actor,
        )
    return get(engine, rollout_id)


def _row(conn: Connection, rollout_id: int, town: str | None = None) -> Any:
    """The rollout; 404 if there is none, or (``town``: a county town's view) if it is
    another town's."""
    if not 1 <= rollout_id <= 2**31 - 1:  # the key's INTEGER: no such row, on every engine
        raise NotFound("rollout", str(rollout_id))
    row = conn.execute(select(t.rollouts).where(t.rollouts.c.id == rollout_id)).first()
    if row is None or (town is not None and row.town != town):
        raise NotFound("rollout", str(rollout_id))
    return row


def halt(engine: Engine, rollout_id: int, *, actor: str, town: str | None = None) -> RolloutOut:
    with writer(engine).begin() as conn:
        row = _row(conn, rollout_id, town)
        if row.state != "running":
            raise Conflict(f"rollout {rollout_id} is {row.state}, not running; nothing changed")
        conn.execute(
            t.rollouts.update()
            .where(t.rollouts.c.id == rollout_id)
            .values(state="halted", reason=f"halted by {actor}", updated_at=time.time())
        )
        audit.record(conn, actor=actor, action="fleet.rollout-halt", target=str(rollout_id))
    return get(engine, rollout_id)


def resume(engine: Engine, rollout_id: int, *, actor: str, town: str | None = None) -> RolloutOut:
    """A halted rollout goes on; the failure threshold counts failures from now on."""
    with writer(engine).begin() as conn:
        row = _row(conn, rollout_id, town)
        if row.state != "halted":
            raise Conflict(f"rollout {rollout_id} is {row.state}, not halted; nothing changed")
        running = _running(conn, row.town)
        if running is not None:
            raise Conflict(f"rollout {running} is running in {row.town}; nothing changed")
        failed = failures(conn, rollout_id)
        conn.execute(
            t.rollouts.update()
            .where(t.rollouts.c.id == rollout_id)
            .values(state="running", failure_base=failed, reason=None, updated_at=time.time())
        )
        audit.record(
            conn,
            actor=actor,
            action="fleet.rollout-resume",
            target=str(rollout_id),
            detail={"failed_before": failed},
        )
    return get(engine, rollout_id)


def rollback(
    engine: Engine,
    rollout_id: int,
    *,
    releases_dir: Path,
    version: str,
    actor: str,
    town: str | None = None,
) -> RolloutOut:
    """Take the boxes the rollout reached to ``version`` (a release built with --rollback):
    a new rollout of it, all those boxes in one wave; the first one ends as rolled_back."""
    with engine.connect() as conn:
        _row(conn, rollout_id, town)  # none, or another town's: 404 before anything else
    release = _release(releases_dir, version)
    if not release.rollback:
        raise Invalid(
            f"version: release {version!r} was not built with --rollback, and boxes refuse "
            "to go back to an older release otherwise (for a newer fix, start a rollout); "
            "nothing changed",
            field="version",
        )
    with writer(engine).begin() as conn:
        row = _row(conn, rollout_id)
        if row.kind != "rollout" or row.state == "rolled_back":
            raise Conflict(f"rollout {rollout_id} is a {row.kind}, {row.state}; nothing changed")
        reached = [
            box
            for box, state, failure in conn.execute(
                select(
                    t.rollout_boxes.c.box_id, t.rollout_boxes.c.state, t.rollout_boxes.c.failure
                ).where(t.rollout_boxes.c.rollout_id == rollout_id)
            )
            if state in IN_FLIGHT or state == "confirmed" or failure == "timeout"
        ]
        conn.execute(
            t.rollouts.update()
            .where(t.rollouts.c.id == rollout_id)
            .values(
                state="rolled_back",
                reason=f"rolled back to {version} by {actor}",
                updated_at=time.time(),
            )
        )
        other = _running(conn, row.town)
        if other is not None:
            raise Conflict(
                f"rollout {other} is running in {row.town}: halt it first; nothing changed"
            )
        new = RolloutIn(
            version=version,
            town=row.town,
            canary=0,
            share=100,
            max_failures=max(1, len(reached)),
            confirm_timeout_s=row.confirm_timeout_s,
            trial_window_s=row.trial_window_s,
            window=row.window,
        )
        new_id = _insert(
            conn,
            request=new,
            release=release,
            boxes=sorted(reached),
            kind="rollback",
            rollback_of=rollout_id,
            actor=actor,
        )
    return get(engine, new_id)


def failures(conn: Connection, rollout_id: int) -> int:
    return len(
        conn.execute(
            select(t.rollout_boxes.c.box_id).where(
                t.rollout_boxes.c.rollout_id == rollout_id, t.rollout_boxes.c.state == "failed"
            )
        ).all()
    )


def _out(row: Any, boxes: list[Any]) -> RolloutOut:
    return RolloutOut(
        id=row.id,
        town=row.town,
        version=row.version,
        kind=row.kind,
        rollback_of=row.rollback_of,
        state=row.state,
        wave=WAVE_NAMES[row.wave],
        canary=row.canary,
        share=row.share,
        max_failures=row.max_failures,
        confirm_timeout_s=row.confirm_timeout_s,
        trial_window_s=row.trial_window_s,
        window=row.window,
        reason=row.reason,
        created_by=row.created_by,
        created_at=_dt(row.created_at),
        updated_at=_dt(row.updated_at),
        counts=dict(Counter(b.state for b in boxes)),
        boxes=[
            RolloutBoxOut(
                box_id=b.box_id,
                wave=WAVE_NAMES[b.wave],
                state=b.state,
                command_id=b.command_id,
                sent_at=_dt(b.sent_at),
                reason=b.reason,
            )
            for b in boxes
        ],
    )


def get(engine: Engine, rollout_id: int, *, town: str | None = None) -> RolloutOut:
    with engine.connect() as conn:
        row = _row(conn, rollout_id, town)
        boxes = conn.execute(
            select(t.rollout_boxes)
            .where(t.rollout_boxes.c.rollout_id == rollout_id)
            .order_by(t.rollout_boxes.c.wave, t.rollout_boxes.c.box_id)
        ).all()
    return _out(row, list(boxes))


def list_rollouts(engine: Engine, *, limit: int = 50, town: str | None = None) -> list[RolloutOut]:
    """Newest first; ``town``: a county town's only."""
    query = select(t.rollouts).order_by(t.rollouts.c.id.desc()).limit(limit)
    if town is not None:
        query = query.where(t.rollouts.c.town == town)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        ids = [row.id for row in rows]
        boxes = conn.execute(
            select(t.rollout_boxes)
            .where(t.rollout_boxes.c.rollout_id.in_(ids))
            .order_by(t.rollout_boxes.c.wave, t.rollout_boxes.c.box_id)
        ).all()
    by_rollout: dict[int, list[Any]] = {}
    for box in boxes:
        by_rollout.setdefault(box.rollout_id, []).append(box)
    return [_out(row, by_rollout.get(row.id, [])) for row in rows]
