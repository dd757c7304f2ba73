"""A county's towns on one central: the paths that name a town, and each town's context.

``TownPaths`` (ASGI) takes the town out of a path and leaves the path the routers know:
``/api/v1/towns/{town}/lots`` is served by the ``/api/v1/lots`` route and
``/towns/{town}/lots/P1`` by the dashboard's ``/lots/P1``, with the town in the request's
scope (``central.deps.TOWN_SCOPE``); ``central.deps.get_central`` then hands the routers
that town's view of ``Central`` and ``current_actor`` checks the actor's town. The
unprefixed paths mean the whole deployment: a single town's central (``--site``) as before.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from central.context import Central, Town
from central.deps import TOWN_SCOPE
from central.lots.service import LotsCache
from central.town_paths import town_of_path
from site_model.county import County, defined_ids
from site_model.site import SiteIndex


class TownPaths:
    """Serve ``/api/v1/towns/{town}/...`` and ``/towns/{town}/...`` by the unprefixed routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = town_of_path(scope.get("path", ""))
            if found is not None:
                town, rest = found
                central = getattr(scope["app"].state, "central", None) if "app" in scope else None
                if central is not None and town not in central.towns:
                    await _no_such_town(send, town)
                    return
                scope = dict(scope)
                scope[TOWN_SCOPE] = town
                scope["path"] = rest
                scope["raw_path"] = rest.encode()
        await self.app(scope, receive, send)


async def _no_such_town(send: Send, town: str) -> None:
    body = json.dumps({"detail": f"town {town!r} not found"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_towns(central: Central, county: County, *, lots_cache_s: float) -> None:
    """Give ``central`` its towns (one for a single town: its own site, index and lots)."""
    central.is_county = county.is_county
    if not county.is_county:
        site = central.site
        central.town_id = site.id
        central.towns = {
            site.id: Town(
                id=site.id,
                site=site,
                index=central.index,
                lots=central.lots,
                places=frozenset(key for _, key in defined_ids(site)) | {site.id},
            )
        }
        return
    central.town_id = None
    central.towns = {
        town_id: Town(
            id=town_id,
            site=site,
            index=SiteIndex.of(site),
            lots=LotsCache(
                central.engine,
                max_age_s=lots_cache_s,
                settings=site.availability,
                only=frozenset(site.lots),
            ),
            places=frozenset(key for _, key in defined_ids(site)) | {town_id},
        )
        for town_id, site in county.towns.items()
    }
