"""The fleet's state (desired against reported, per box) and configuration pushes.

Pushes are kept as commands (``commands`` table, name ``config-push``): a box's versions
are its pushes, numbered from 1; a push of the hash last pushed keeps its version. Each
push is audited (``fleet.config-push``) in the same transaction as its command row.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, select

from central import audit
from central.commands.service import SendCommand, store_command
from central.db import schema as t
from central.db.engine import writer
from central.errors import NotFound, Unavailable
from central.fleet.desired import Desired, desired_for
from central.fleet.models import FleetBoxOut, FleetState, PushOut
from firmware_protocols.uplink import Command, Topics, encode_payload
from firmware_protocols.uplink.models import ConfigPush
from firmware_protocols.uplink.topics import CommandName
from site_model.site import Site
from site_model.site_config import differing

PUSH = CommandName.CONFIG_PUSH.value
PUSH_TTL_S = 3600  # a box offline longer gets the next push, not this one
STATES: Mapping[str, FleetState] = {
    "applying": "applying",
    "failed": "failed",
    "rolled_back": "rolled back",
}


def _pushes(conn: Connection, box_ids: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
    """Each box's pushes as (version, hash), newest first: one query for every box."""
    out: dict[str, list[tuple[int, str]]] = {box: [] for box in box_ids}
    rows = conn.execute(
        select(t.commands.c.box_id, t.commands.c.payload)
        .where(t.commands.c.box_id.in_(list(out)), t.commands.c.name == PUSH)
        .order_by(t.commands.c.issued_at.desc())
    )
    for box_id, payload in rows:
        body = json.loads(payload)["body"]
        out[box_id].append((int(body["version"]), str(body["hash"])))
    return out


def decide(
    desired: Desired, report: Mapping[str, Any] | None
) -> tuple[FleetState, list[str], str | None]:
    """A box's state, what differs, and the reason of a failed or rolled-back push. Pure."""
    if not report:
        return "pending", ["not reported (the box has not said what it runs)"], None
    differs = differing(desired.sections, report.get("sections") or {})
    apply = report.get("apply") or {}
    if apply.get("hash") == desired.hash and apply.get("state") in STATES:
        return STATES[apply["state"]], differs, apply.get("reason")
    if report.get("hash") == desired.hash:
        return "in sync", [], None
    return "pending", differs or ["the hash differs"], None


def fleet_status(engine: Engine, site: Site, *, mqtt_url: str) -> list[FleetBoxOut]:
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(t.boxes.c.box_id, t.boxes.c.status_json)).all())
        pushes = _pushes(conn, site.boxes)
    out = []
    for box_id in sorted(site.boxes):
        desired = desired_for(site, box_id, mqtt_url=mqtt_url)
        status = json.loads(statuses[box_id]) if statuses.get(box_id) else {}
        report = status.get("site_config")
        state, differs, reason = decide(desired, report)
        apply = (report or {}).get("apply") or {}
        release = status.get("release") or {}
        out.append(
            FleetBoxOut(
                box_id=box_id,
                desired_hash=desired.hash,
                desired_version=next((v for v, h in pushes[box_id] if h == desired.hash), None),
                reported_hash=(report or {}).get("hash"),
                state=state,
                differs=differs,
                reason=reason,
                applied_version=apply.get("version"),
                applied_at=apply.get("ts"),
                release_version=release.get("version"),
                release_state=release.get("state"),
                release_failed_version=release.get("failed_version"),
                release_reason=release.get("reason"),
                release_at=release.get("ts"),
            )
        )
    return out


def push(
    engine: Engine,
    site: Site,
    *,
    box_ids: Iterable[str],
    mqtt_url: str,
    actor: str,
    publish: SendCommand | None,
) -> list[PushOut]:
    """Push each box its desired configuration (audited); NotFound for a box not in the site."""
    boxes = list(box_ids)
    for box_id in boxes:
        if box_id not in site.boxes:
            raise NotFound("box", box_id)
    if publish is None:
        raise Unavailable("the MQTT link (this process runs without ingest)")
    out = []
    for box_id in boxes:
        desired = desired_for(site, box_id, mqtt_url=mqtt_url)
        now = dt.datetime.now(dt.UTC)
        with writer(engine).begin() as conn:
            pushed = _pushes(conn, [box_id])[box_id]
            version = next((v for v, h in pushed if h == desired.hash), None)
            if version is None:
                version = max((v for v, _ in pushed), default=0) + 1
            command = Command(
                command_id=uuid.uuid4(),
                issued_at=now,
                expires_at=now + dt.timedelta(seconds=PUSH_TTL_S),
                body=ConfigPush(version=version, hash=desired.hash, document=desired.toml),
            )
            payload = encode_payload(command)
            store_command(conn, box_id=box_id, command=command, payload=payload, actor=actor)
            audit.record(
                conn,
                actor=actor,
                action="fleet.config-push",
                target=box_id,
                detail={"version": version, "hash": desired.hash},
            )
        topic = Topics(site.id, box_id).cmd(CommandName.CONFIG_PUSH)
        sent = publish(topic, payload, float(PUSH_TTL_S))
        out.append(
            PushOut(
                box_id=box_id,
                version=version,
                hash=desired.hash,
                command_id=str(command.command_id),
                sent=sent,
            )
        )
    return out
