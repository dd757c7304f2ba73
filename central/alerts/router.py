from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from central.alerts import service
from central.alerts.models import AlertAction, AlertOut, AlertStateName
from central.context import Central
from central.deps import CentralDep, Operator, Viewer
from central.errors import NotFound

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=list[AlertOut], summary="Alerts, newest first")
def alerts(
    central: CentralDep,
    _: Viewer,
    state: AlertStateName | None = None,
    box_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    return service.list_alerts(
        central.engine, state=state, box_id=box_id, limit=limit, boxes=central.town_boxes()
    )


def _town_alert(central: Central, alert_id: int) -> AlertOut:
    """The alert, or 404 for an alert of another town's box (a county)."""
    found = service.get_alert(central.engine, alert_id)
    if not central.shows(found.box_id):
        raise NotFound("alert", str(alert_id))
    return found


@router.get("/{alert_id}", response_model=AlertOut, summary="One alert")
def alert(alert_id: AlertId, central: CentralDep, _: Viewer) -> AlertOut:
    return _town_alert(central, alert_id)


@router.post("/{alert_id}/acknowledge", response_model=AlertOut, summary="Acknowledge")
def acknowledge(
    alert_id: AlertId, central: CentralDep, actor: Operator, body: AlertAction | None = None
) -> AlertOut:
    _town_alert(central, alert_id)
    note = body.note if body else None
    return service.acknowledge(central.engine, alert_id=alert_id, actor=actor.label, note=note)


@router.post("/{alert_id}/resolve", response_model=AlertOut, summary="Resolve")
def resolve(
    alert_id: AlertId, central: CentralDep, actor: Operator, body: AlertAction | None = None
) -> AlertOut:
    _town_alert(central, alert_id)
    note = body.note if body else None
    return service.resolve(central.engine, alert_id=alert_id, actor=actor.label, note=note)
