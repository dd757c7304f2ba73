"""A box that comes back online with a configuration push it never answered gets it again.

A push to an offline box expires (``PUSH_TTL_S``) and the broker does not keep it for a box
without a session. So on the fleet job's beat, for every box whose last birth came after its
newest push, which it has not answered and which is still what the site file gives it, while
it does not run it yet: push again, the same version and hash, as a new command (audited as
``fleet.config-push`` by ``fleet:box-back``). Once per birth: the new push is newer than it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, and_, func, select

from central.commands.service import SendCommand
from central.db import schema as t
from central.fleet.desired import desired_for
from central.fleet.models import PushOut
from central.fleet.service import PUSH, push
from site_model.site import Site

ACTOR = "fleet:box-back"


def outstanding(engine: Engine, box_ids: list[str]) -> list[Any]:
    """Of ``box_ids``, those online whose newest push is unanswered and older than their
    last birth, with that push: one query, which in the usual case (every push answered)
    returns nothing. It ran every beat for every town, so it must not read every online
    box's status to find none (the county bench measured the old one as the largest share
    of an idle central's CPU)."""
    c, b = t.commands.c, t.boxes.c
    newest = (
        select(c.box_id, func.max(c.issued_at).label("issued_at"))
        .where(c.name == PUSH, c.box_id.in_(box_ids))
        .group_by(c.box_id)
        .subquery()
    )
    query = (
        select(b.box_id, b.status_json, c.payload)
        .select_from(newest)
        .join(t.commands, and_(c.box_id == newest.c.box_id, c.issued_at == newest.c.issued_at))
        .join(t.boxes, b.box_id == newest.c.box_id)
        .where(
            c.name == PUSH,
            c.reply_at.is_(None),
            b.online.is_(True),
            b.status_changed_at > c.issued_at,
        )
    )
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def due(engine: Engine, sites: Iterable[Site], *, mqtt_url: str) -> dict[str, list[str]]:
    """By town, the boxes back online since a push they have not answered, still desired
    and not run: one query for every town's boxes (a county's beat asked once per town)."""
    town_of = {box_id: site for site in sites for box_id in site.boxes}
    out: dict[str, set[str]] = {}
    for box in outstanding(engine, list(town_of)):
        site = town_of[box.box_id]
        pushed_hash = json.loads(box.payload)["body"]["hash"]
        desired = desired_for(site, box.box_id, mqtt_url=mqtt_url)
        status = json.loads(box.status_json) if box.status_json else {}
        runs = (status.get("site_config") or {}).get("hash")
        if pushed_hash == desired.hash and runs != desired.hash:
            out.setdefault(site.site.id, set()).add(box.box_id)
    return {town: sorted(boxes) for town, boxes in out.items()}


def repush_returned(
    engine: Engine, sites: Iterable[Site], *, mqtt_url: str, publish: SendCommand | None
) -> list[PushOut]:
    """Push again to every town's returned boxes, each by its own town's site file."""
    sites = list(sites)
    by_town = due(engine, sites, mqtt_url=mqtt_url)
    if not by_town or publish is None:
        return []
    out: list[PushOut] = []
    for site in sites:
        if boxes := by_town.get(site.site.id):
            out += push(engine, site, box_ids=boxes, mqtt_url=mqtt_url, actor=ACTOR,
                        publish=publish)  # fmt: skip
    return out
