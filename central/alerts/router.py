from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from central.alerts import service
from central.alerts.models import AlertAction, AlertOut, AlertStateName
from central.deps import EngineDep, Operator, Viewer

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=list[AlertOut], summary="Alerts, newest first")
def alerts(
    engine: EngineDep,
    _: Viewer,
    state: AlertStateName | None = None,
    box_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    return service.list_alerts(engine, state=state, box_id=box_id, limit=limit)


@router.get("/{alert_id}", response_model=AlertOut, summary="One alert")
def alert(alert_id: AlertId, engine: EngineDep, _: Viewer) -> AlertOut:
    return service.get_alert(engine, alert_id)


@router.post("/{alert_id}/acknowledge", response_model=AlertOut, summary="Acknowledge")
def acknowledge(
    alert_id: AlertId, engine: EngineDep, actor: Operator, body: AlertAction | None = None
) -> AlertOut:
    note = body.note if body else None
    return service.acknowledge(engine, alert_id=alert_id, actor=actor.label, note=note)


@router.post("/{alert_id}/resolve", response_model=AlertOut, summary="Resolve")
def resolve(
    alert_id: AlertId, engine: EngineDep, actor: Operator, body: AlertAction | None = None
) -> AlertOut:
    note = body.note if body else None
    return service.resolve(engine, alert_id=alert_id, actor=actor.label, note=note)
