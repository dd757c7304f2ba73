from __future__ import annotations

from fastapi import APIRouter

from central.context import Central
from central.deps import CentralDep, Viewer
from central.errors import NotFound
from central.lots.models import BayOut
from central.lots.service import list_bays
from central.zones import service
from central.zones.models import ZoneOut

router = APIRouter(prefix="/api/v1/zones", tags=["zones"])


@router.get("", response_model=list[ZoneOut], summary="Every stall zone")
def zones(central: CentralDep, _: Viewer) -> list[ZoneOut]:
    zones = service.list_zones(central.engine, settings=central.site.availability)
    return [z for z in zones if central.shows(z.id)]


def _town_zone(central: Central, zone_id: str) -> None:
    if not central.shows(zone_id):  # a zone of another town of the county
        raise NotFound("zone", zone_id)


@router.get("/{zone_id}", response_model=ZoneOut, summary="One stall zone")
def zone(zone_id: str, central: CentralDep, _: Viewer) -> ZoneOut:
    _town_zone(central, zone_id)
    return service.list_zones(central.engine, zone_id=zone_id, settings=central.site.availability)[
        0
    ]


@router.get("/{zone_id}/bays", response_model=list[BayOut], summary="Bays of a stall zone")
def zone_bays(zone_id: str, central: CentralDep, _: Viewer) -> list[BayOut]:
    _town_zone(central, zone_id)
    settings = central.site.availability
    service.list_zones(central.engine, zone_id=zone_id, settings=settings)
    return list_bays(central.engine, zone_id=zone_id, settings=settings)
