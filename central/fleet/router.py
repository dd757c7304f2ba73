from __future__ import annotations

from fastapi import APIRouter

from central.deps import Admin, CentralDep, Viewer
from central.errors import Invalid
from central.fleet import service
from central.fleet.models import FleetBoxOut, PushIn, PushOut

router = APIRouter(prefix="/api/v1", tags=["fleet"])


@router.get(
    "/fleet", response_model=list[FleetBoxOut], summary="Each box: desired and reported config"
)
def fleet(central: CentralDep, _: Viewer) -> list[FleetBoxOut]:
    return service.fleet_status(central.engine, central.site, mqtt_url=central.settings.box_url)


@router.post(
    "/fleet/config/push",
    response_model=list[PushOut],
    status_code=202,
    summary="Push boxes their desired configuration (admin; audited)",
)
def push(request: PushIn, central: CentralDep, actor: Admin) -> list[PushOut]:
    if (request.box_id is None) == (not request.all):
        raise Invalid("give box_id or all=true (one of them)", field="box_id")
    if central.is_county and central.town_id is None:  # a box's config is its town's
        raise Invalid("on a county central, push under /api/v1/towns/{town}/", field="path")
    boxes = sorted(central.site.boxes) if request.all else [str(request.box_id)]
    mqtt = central.mqtt
    return service.push(
        central.engine,
        central.site,
        box_ids=boxes,
        mqtt_url=central.settings.box_url,
        actor=actor.label,
        publish=mqtt.publish_command if mqtt is not None else None,
    )
