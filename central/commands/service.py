"""Send a command to a box over MQTT and keep it, with the box's reply, in the store."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, select

from central import audit
from central.commands.models import CommandOut, ReplyOut
from central.db import schema as t
from central.db.engine import writer
from central.errors import Invalid, NotFound, Unavailable
from firmware_protocols.uplink import (
    CloseBay,
    Command,
    OpenBay,
    SignOverride,
    Topics,
    encode_payload,
)
from firmware_protocols.uplink.models import CommandBody, ConfigPush, InstallRelease
from site_model.site import SiteIndex

_BODY: TypeAdapter[Any] = TypeAdapter(CommandBody)
SendCommand = Callable[[str, bytes, float | None], bool]


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _command_out(row: Any) -> CommandOut:
    document = json.loads(row.payload)
    now = time.time()
    if row.reply_at is not None:
        state = "ok" if row.reply_ok else "failed"
        reply = ReplyOut(ok=bool(row.reply_ok), error=row.reply_error, at=_dt(row.reply_at))
    else:
        state = "expired" if row.expires_at is not None and row.expires_at < now else "sent"
        reply = None
    return CommandOut(
        id=row.command_id,
        box_id=row.box_id,
        name=row.name,
        body=document["body"],
        issued_by=row.issued_by,
        issued_at=_dt(row.issued_at),
        expires_at=_dt(row.expires_at),
        state=state,
        reply=reply,
    )


def parse_body(body: dict[str, Any]) -> Any:
    """Validate an API command body against the uplink v1 model (JSON rules)."""
    try:
        return _BODY.validate_json(json.dumps(body))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in ("body", *err["loc"]))
        raise Invalid(f"{where}: {err['msg']}", field=where) from None


def send(
    engine: Engine,
    *,
    site: SiteIndex,
    box_id: str,
    body: dict[str, Any],
    expires_in_s: int,
    actor: str,
    publish: SendCommand | None,
    fleet: bool = False,
    within: Callable[[Connection, str], None] | None = None,
) -> CommandOut:
    """Store, audit and publish one command; ``fleet``: sent by the rollout engine, the one
    sender of ``install-release`` (an operator's API call may not send it). ``within(conn,
    command_id)`` writes the caller's own record of it in the same transaction."""
    if box_id not in site.boxes:
        raise NotFound("box", box_id)
    parsed = parse_body(body)
    if isinstance(parsed, InstallRelease) and not fleet:
        raise Invalid(
            "a release is installed by a rollout (parkgrid central fleet rollout, an admin's), "
            "not as a command",
            field="body.command",
        )
    if isinstance(parsed, ConfigPush):
        raise Invalid(
            "a configuration is pushed with fleet config push (an admin's, from the site "
            "file), not as a command",
            field="body.command",
        )
    if isinstance(parsed, CloseBay | OpenBay):
        place = site.bays.get(parsed.bay_id)
        if place is None or place.box_id != box_id:
            raise Invalid(
                f"bay {parsed.bay_id!r} is not a bay of box {box_id!r}", field="body.bay_id"
            )
    if isinstance(parsed, SignOverride):
        with engine.connect() as conn:
            owner = conn.execute(
                select(t.signs.c.box_id).where(t.signs.c.sign_id == parsed.sign_id)
            ).scalar()
        if owner != box_id:
            raise Invalid(
                f"box {box_id!r} has not reported a sign {parsed.sign_id!r}", field="body.sign_id"
            )
    if publish is None:
        raise Unavailable("the MQTT link (this process runs without ingest)")
    now = dt.datetime.now(dt.UTC)
    command = Command(
        command_id=uuid.uuid4(),
        issued_at=now,
        expires_at=now + dt.timedelta(seconds=expires_in_s),
        body=parsed,
    )
    payload = encode_payload(command)
    with writer(engine).begin() as conn:
        store_command(conn, box_id=box_id, command=command, payload=payload, actor=actor)
        audit.record(
            conn,
            actor=actor,
            action=f"command.{command.name.value}",
            target=box_id,
            detail=json.loads(payload)["body"],
        )
        if within is not None:
            within(conn, str(command.command_id))
    topic = Topics(site.site_of(box_id), box_id).cmd(command.name)
    if not publish(topic, payload, float(expires_in_s)):
        raise Unavailable("the MQTT broker")
    return get_command(engine, str(command.command_id))


def store_command(
    conn: Connection, *, box_id: str, command: Command, payload: bytes, actor: str
) -> None:
    """Keep a command to a box (in the caller's transaction, beside its audit row); its
    reply is matched to it by ``central.ingest.boxes.apply_replies``."""
    conn.execute(
        t.commands.insert().values(
            command_id=str(command.command_id),
            box_id=box_id,
            name=command.name.value,
            payload=payload.decode(),
            issued_by=actor,
            issued_at=command.issued_at.timestamp(),
            expires_at=command.expires_at.timestamp() if command.expires_at else None,
        )
    )


def get_command(engine: Engine, command_id: str) -> CommandOut:
    with engine.connect() as conn:
        row = conn.execute(select(t.commands).where(t.commands.c.command_id == command_id)).first()
    if row is None:
        raise NotFound("command", command_id)
    return _command_out(row)


def list_commands(engine: Engine, *, box_id: str, limit: int = 100) -> list[CommandOut]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.commands)
            .where(t.commands.c.box_id == box_id)
            .order_by(t.commands.c.issued_at.desc())
            .limit(limit)
        )
        return [_command_out(row) for row in rows]
