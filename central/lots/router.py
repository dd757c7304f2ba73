"""/api/v1/lots: public figures (open data), bays and history (with a token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime

from central.context import Central
from central.deps import CentralDep, Viewer
from central.errors import NotFound
from central.lots import service
from central.lots.models import BayOut, DwellStats, LotOut, LotsOut, OccupancyHistory

public = APIRouter(prefix="/api/v1", tags=["lots (public)"])
router = APIRouter(prefix="/api/v1/lots", tags=["lots"])

JSON = "application/json"
Start = Annotated[AwareDatetime | None, Query(description="RFC 3339; default: end minus a day")]
End = Annotated[AwareDatetime | None, Query(description="RFC 3339; default: now")]


@public.get("/lots", response_model=LotsOut, summary="Every lot with its live figures")
async def lots(central: CentralDep) -> Response:
    cache = central.lots
    body = cache.all() if cache.fresh() else await run_in_threadpool(cache.all)
    return Response(body, media_type=JSON)


@public.get(
    "/lots/{lot_id}",
    response_model=LotOut,
    responses={404: {"description": "No such lot"}},
    summary="One lot with its live figures",
)
async def lot(lot_id: str, central: CentralDep) -> Response:
    cache = central.lots
    if cache.fresh():
        return Response(cache.one(lot_id), media_type=JSON)
    return Response(await run_in_threadpool(cache.one, lot_id), media_type=JSON)


@public.get("/ngsi/lots", summary="The lots as FIWARE OffStreetParking entities (key-values)")
def ngsi_lots(central: CentralDep) -> list[dict[str, object]]:
    lots = service.list_lots(central.engine, central.site.availability, only=_only(central))
    return service.ngsi_lots(lots, site_id=central.site.id)


def _only(central: Central) -> frozenset[str] | None:
    """A county town's lots (None: every lot in the store)."""
    return frozenset(central.site.lots) if central.places is not None else None


def _town_lot(central: Central, lot_id: str) -> None:
    """404 for a lot of another town (a county: one store holds every town's lots)."""
    if not central.shows(lot_id):
        raise NotFound("lot", lot_id)


@router.get("/{lot_id}/bays", response_model=list[BayOut], summary="Bays of a lot")
def bays(lot_id: str, central: CentralDep, _: Viewer) -> list[BayOut]:
    _town_lot(central, lot_id)
    return service.list_bays(central.engine, lot_id=lot_id, settings=central.site.availability)


@router.get("/{lot_id}/history", response_model=OccupancyHistory, summary="Occupancy over time")
def history(
    lot_id: str,
    central: CentralDep,
    _: Viewer,
    start: Start = None,
    end: End = None,
    step: Annotated[int, Query(ge=1, le=7 * 86400, description="seconds")] = 900,
) -> OccupancyHistory:
    _town_lot(central, lot_id)
    return service.occupancy_history(
        central.engine, lot_id=lot_id, start=start, end=end, step_s=step
    )


@router.get("/{lot_id}/dwell", response_model=DwellStats, summary="How long bays stay occupied")
def dwell(
    lot_id: str, central: CentralDep, _: Viewer, start: Start = None, end: End = None
) -> DwellStats:
    _town_lot(central, lot_id)
    return service.dwell_stats(central.engine, lot_id=lot_id, start=start, end=end)
