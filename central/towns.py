"""A county's towns on one central: the paths that name a town, and each town's context.

``TownPaths`` (ASGI) takes the town out of a path and leaves the path the routers know:
``/api/v1/towns/{town}/lots`` is served by the ``/api/v1/lots`` route and
``/towns/{town}/lots/P1`` by the dashboard's ``/lots/P1``, with the town in the request's
scope (``central.deps.TOWN_SCOPE``); ``central.deps.get_central`` then hands the routers
that town's view of ``Central`` and ``current_actor`` checks the actor's town. The
unprefixed paths mean the whole deployment: a single town's central (``--site``) as before.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from central.context import Central, Town
from central.deps import TOWN_SCOPE
from central.lots.service import LotsCache
from site_model.county import County, defined_ids
from site_model.site import SiteIndex

_API = re.compile(r"^/api/v1/towns/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(/.*)$")
_PAGES = re.compile(r"^/towns/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(/.*)?$")


def town_of_path(path: str) -> tuple[str, str] | None:
    """(town, the path without it) for a path that names a town; else None."""
    api = _API.match(path)
    if api is not None:
        return api.group(1), "/api/v1" + api.group(2)
    page = _PAGES.match(path)
    if page is not None:
        return page.group(1), page.group(2) or "/"
    return None


class TownPaths:
    """Serve ``/api/v1/towns/{town}/...`` and ``/towns/{town}/...`` by the unprefixed routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = town_of_path(scope.get("path", ""))
            if found is not None:
                town, rest = found
                scope = dict(scope)
                scope[TOWN_SCOPE] = town
                scope["path"] = rest
                scope["raw_path"] = rest.encode()
        await self.app(scope, receive, send)


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
