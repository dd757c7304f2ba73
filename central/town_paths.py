"""The paths that name a county's town (pure): ``/api/v1/towns/{town}/...`` and
``/towns/{town}/...`` (``central.towns.TownPaths`` serves them by the unprefixed routes).

Not every route has a town's spelling. Accounts (``/api/v1/auth/...``: login, logout, me)
are the deployment's, and the balancer limits logins per address on the one path
(deploy/haproxy): ``/api/v1/towns/{town}/auth/login`` went past that limit. A town's page
prefix serves pages, not the API or the metrics under it (``/towns/{town}/metrics`` named
a town and showed the county's). Such a path names no town: the routes answer it 404."""

from __future__ import annotations

import re

_API = re.compile(r"^/api/v1/towns/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(/.*)$")
_PAGES = re.compile(r"^/towns/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(/.*)?$")
_NOT_A_TOWNS_API = re.compile(r"^/auth(/|$)")
_NOT_A_TOWNS_PAGE = re.compile(r"^/(api|metrics)(/|$)")


def town_of_path(path: str) -> tuple[str, str] | None:
    """(town, the path without it) for a path that names a town; else None."""
    api = _API.match(path)
    if api is not None:
        if _NOT_A_TOWNS_API.match(api.group(2)):
            return None
        return api.group(1), "/api/v1" + api.group(2)
    page = _PAGES.match(path)
    if page is not None:
        rest = page.group(2) or "/"
        if _NOT_A_TOWNS_PAGE.match(rest):
            return None
        return page.group(1), rest
    return None
