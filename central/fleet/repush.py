"""A box that comes back online with a configuration push it never answered gets it again.

A push to an offline box expires (``PUSH_TTL_S``) and the broker does not keep it for a box
without a session. So on the fleet job's beat, for every box whose last birth came after its
newest push, which it has not answered and which is still what the site file gives it, while
it does not run it yet: push again, the same version and hash, as a new command (audited as
``fleet.config-push`` by ``fleet:box-back``). Once per birth: the new push is newer than it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select

from central.commands.service import SendCommand
from central.db import schema as t
from central.fleet.desired import desired_for
from central.fleet.models import PushOut
from central.fleet.service import PUSH, push
from site_model.site import Site

ACTOR = "fleet:box-back"


def _newest_pushes(engine: Engine, site: Site) -> tuple[list[Any], dict[str, Any]]:
    with engine.connect() as conn:
        boxes = conn.execute(
            select(
                t.boxes.c.box_id, t.boxes.c.online, t.boxes.c.status_changed_at,
                t.boxes.c.status_json,
            ).where(t.boxes.c.box_id.in_(list(site.boxes)), t.boxes.c.online.is_(True))
        ).all()  # fmt: skip
        newest: dict[str, Any] = {}
        for row in conn.execute(
            select(
                t.commands.c.box_id, t.commands.c.payload, t.commands.c.issued_at,
                t.commands.c.reply_at,
            )
            .where(t.commands.c.box_id.in_([b.box_id for b in boxes]), t.commands.c.name == PUSH)
            .order_by(t.commands.c.issued_at.desc())
        ):  # fmt: skip
            newest.setdefault(row.box_id, row)
    return list(boxes), newest


def due(engine: Engine, site: Site, *, mqtt_url: str) -> list[str]:
    """The boxes back online since a push they have not answered, still desired, not run."""
    boxes, newest = _newest_pushes(engine, site)
    out = []
    for box in boxes:
        last = newest.get(box.box_id)
        if last is None or last.reply_at is not None:
            continue
        if box.status_changed_at is None or box.status_changed_at <= last.issued_at:
            continue
        pushed_hash = json.loads(last.payload)["body"]["hash"]
        desired = desired_for(site, box.box_id, mqtt_url=mqtt_url)
        status = json.loads(box.status_json) if box.status_json else {}
        runs = (status.get("site_config") or {}).get("hash")
        if pushed_hash == desired.hash and runs != desired.hash:
            out.append(box.box_id)
    return out


def repush_returned(
    engine: Engine, site: Site, *, mqtt_url: str, publish: SendCommand | None
) -> list[PushOut]:
    boxes = due(engine, site, mqtt_url=mqtt_url)
    if not boxes or publish is None:
        return []
    return push(engine, site, box_ids=boxes, mqtt_url=mqtt_url, actor=ACTOR, publish=publish)
