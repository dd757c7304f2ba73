"""Open-data routes: ParkAPI v3 and DATEX II v3, public, cached per refresh, rate limited.

Each document is rebuilt only when the public lot figures change (one ``LotsCache`` query
per refresh) or the minute turns (opening hours), and served with an ETag, a short
``Cache-Control`` and gzip, like the drivers' page (``central/public``).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from central.context import Central
from central.deps import get_central
from central.lots.models import LotOut, LotsOut
from central.opendata import datex2, parkapi
from central.public.cache import Encoded
from central.public.router import max_age, public_clock, refused, send_encoded

router = APIRouter(prefix="/api/v1", tags=["open data (public)"])
_LOTS = TypeAdapter(LotsOut)
_lock = threading.Lock()

Builder = Callable[[list[LotOut], dt.datetime, Request], bytes]


def _cached(request: Request, name: str, build: Builder) -> Encoded:
    """The document ``name`` of the lots the request's path shows (a county town's, or
    every lot), rebuilt when they or the minute change."""
    central = get_central(request)
    name = f"{central.town_id}/{name}" if central.places is not None else name
    raw = central.lots.all()
    zone = ZoneInfo(central.site.site.timezone)
    now = dt.datetime.fromtimestamp(public_clock(request), zone)
    key = (raw, now.strftime("%Y-%m-%dT%H:%M"))
    with _lock:
        store: dict[str, tuple[object, Encoded]] | None = getattr(
            request.app.state, "opendata_cache", None
        )
        if store is None:
            store = request.app.state.opendata_cache = {}
        found = store.get(name)
        if found is not None and found[0] == key:
            return found[1]
        encoded = Encoded.of(build(_LOTS.validate_json(raw).lots, now, request))
        store[name] = (key, encoded)
        return encoded


def _static_time(request: Request) -> dt.datetime:
    """When central loaded the site file: the static data's version time."""
    return dt.datetime.fromtimestamp(request.app.state.central.started_at, dt.UTC)


def _parkapi(lots: list[LotOut], now: dt.datetime, request: Request) -> bytes:
    central = get_central(request)
    document = parkapi.parking_sites(
        lots,
        central.site,
        now=now,
        static_updated=_static_time(request),
        public_url=_public_url(central),
        forecasts=_forecasts(request),
    )
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _public_url(central: Central) -> str | None:
    """The drivers' page: a county town's under ``/towns/{town}``."""
    url = central.settings.public_url
    if url is None or central.places is None:
        return url
    return url.rstrip("/") + f"/towns/{central.town_id}"


def _forecasts(request: Request) -> dict[str, object]:
    forecaster = getattr(request.app.state, "forecaster", None)
    if forecaster is None:
        return {}
    return {k: v for k, v in forecaster.current().items() if v.get("status") == "ok"}


def _table(lots: list[LotOut], now: dt.datetime, request: Request) -> bytes:
    site = get_central(request).site
    return datex2.table_publication(lots, site, now=now, version_time=_static_time(request))


def _status(lots: list[LotOut], now: dt.datetime, request: Request) -> bytes:
    return datex2.status_publication(lots, get_central(request).site, now=now)


XML = {200: {"content": {"application/xml": {}}}, 304: {"description": "Not modified"}}


@router.get(
    "/parkapi/v3/parking-sites",
    summary="ParkAPI v3: every lot as a parking site with realtime free capacity and status",
    responses={304: {"description": "Not modified (ETag)"}, 429: {"description": "Too fast"}},
)
def parkapi_parking_sites(request: Request) -> Response:
    return refused(request) or send_encoded(
        request, _cached(request, "parkapi", _parkapi), "application/json", max_age(request)
    )


@router.get(
    "/datex2/v3/parking-table",
    summary="DATEX II v3 ParkingTablePublication: the lots (name, spaces, position)",
    responses=XML,
)
def datex2_parking_table(request: Request) -> Response:
    return refused(request) or send_encoded(
        request, _cached(request, "table", _table), "application/xml", max_age(request)
    )


@router.get(
    "/datex2/v3/parking-status",
    summary="DATEX II v3 ParkingStatusPublication: each lot's vacant spaces, trend, status",
    responses=XML,
)
def datex2_parking_status(request: Request) -> Response:
    return refused(request) or send_encoded(
        request, _cached(request, "status", _status), "application/xml", max_age(request)
    )
