"""Box records in the transaction: statuses, command replies, last seen, site problems."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case

from central.db import schema as t
from central.ingest.batch import Batch, IngestContext, ts
from firmware_protocols.uplink import BoxStatus

log = logging.getLogger(__name__)


def apply_statuses(ctx: IngestContext, conn: Connection, batch: Batch) -> None:
    """Store each box status (birth or will); check a birth's sensor count."""
    for status, received_at in batch.statuses:
        online = status.state.value == "online"
        values: dict[str, Any] = {
            "online": online,
            "seen": True,
            "boot_id": str(status.boot_id),
            "offline_reason": None if online else (status.reason and status.reason.value),
            "status_ts": ts(status.ts),
            # When it came online or went offline (or rebooted), not every periodic status:
            # the availability rule dates figures against it (central/boxes/availability.py).
            "status_changed_at": case(
                (
                    and_(t.boxes.c.online == online, t.boxes.c.boot_id == str(status.boot_id)),
                    t.boxes.c.status_changed_at,
                ),
                else_=received_at,
            ),
        }
        if online:
            values.update(
                software_version=status.software_version,
                config_hash=status.config_hash,
                sensor_count=status.sensor_count,
                status_json=status.model_dump_json(),
            )
            _check_birth(ctx, batch, status)
        conn.execute(t.boxes.update().where(t.boxes.c.box_id == status.box_id).values(values))
        batch.notices.append(
            {"type": "box", "box_id": status.box_id, "online": online, "at": received_at}
        )


def _check_birth(ctx: IngestContext, batch: Batch, status: BoxStatus) -> None:
    expected = sum(1 for place in ctx.site.bays.values() if place.box_id == status.box_id)
    if status.sensor_count is not None and status.sensor_count != expected:
        batch.problems.append(
            (
                status.box_id,
                "status.sensor_count",
                f"the box maps {status.sensor_count} sensors but the site file gives it "
                f"{expected} bays",
            )
        )


def apply_replies(ctx: IngestContext, conn: Connection, batch: Batch) -> None:
    """Match each command reply to the command central sent that box."""
    for box_id, reply, received_at in batch.replies:
        result = conn.execute(
            t.commands.update()
            .where(
                t.commands.c.command_id == str(reply.command_id),
                t.commands.c.box_id == box_id,
            )
            .values(reply_ok=reply.ok, reply_error=reply.error, reply_at=received_at)
        )
        if result.rowcount:
            batch.notices.append(
                {
                    "type": "command_reply",
                    "box_id": box_id,
                    "command_id": str(reply.command_id),
                    "ok": reply.ok,
                }
            )
        else:
            ctx.stats.replies_unmatched += 1


_SEEN = (  # built once: the writer runs it for every batch
    t.boxes.update()
    .where(t.boxes.c.box_id == bindparam("b_box_id"))
    .values(last_seen_at=bindparam("b_seen"))
)


def apply_seen(conn: Connection, batch: Batch) -> None:
    """When central last heard from each box of the batch."""
    if batch.seen:
        conn.execute(
            _SEEN,
            [{"b_box_id": box, "b_seen": at} for box, at in batch.seen.items()],
        )


def record_problems(ctx: IngestContext, conn: Connection, batch: Batch) -> None:
    """Record each box/site disagreement once, counting repeats."""
    if not batch.problems:
        return
    now = time.time()
    unique = {(box, subject): message for box, subject, message in batch.problems}
    for (box, subject), message in unique.items():
        key = and_(t.site_problems.c.box_id == box, t.site_problems.c.subject == subject)
        result = conn.execute(
            t.site_problems.update()
            .where(key)
            .values(message=message, last_seen_at=now, count=t.site_problems.c.count + 1)
        )
        if not result.rowcount:
            conn.execute(
                t.site_problems.insert(),
                {
                    "box_id": box,
                    "subject": subject,
                    "message": message,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "count": 1,
                },
            )
            ctx.stats.site_problems += 1
            log.warning("site disagreement: box %s, %s: %s", box, subject, message)
