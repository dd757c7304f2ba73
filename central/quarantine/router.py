from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from central.deps import CentralDep, Operator
from central.quarantine import service
from central.quarantine.models import QuarantineOut

router = APIRouter(prefix="/api/v1/quarantine", tags=["quarantine"])


@router.get(
    "",
    response_model=QuarantineOut,
    summary="Refused MQTT messages, newest first, with the retention that bounds them",
)
def quarantine(
    central: CentralDep,
    _: Operator,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    box_id: str | None = None,
) -> QuarantineOut:
    return service.list_quarantine(central, limit=limit, box_id=box_id)
