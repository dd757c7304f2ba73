"""The paths that name a county's town (pure): ``/api/v1/towns/{town}/...`` and
``/towns/{town}/...`` (``central.towns.TownPaths`` serves them by the unprefixed routes)."""

from __future__ import annotations

import re

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
