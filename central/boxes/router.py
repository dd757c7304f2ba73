from __future__ import annotations

from fastapi import APIRouter

from central.boxes import service
from central.boxes.models import BoxOut, SignOut
from central.deps import CentralDep, Viewer
from central.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["boxes"])


@router.get("/boxes", response_model=list[BoxOut], summary="Every box with its health")
def boxes(central: CentralDep, _: Viewer) -> list[BoxOut]:
    return [b for b in service.list_boxes(central.engine, central.site) if central.shows(b.id)]


@router.get("/boxes/{box_id}", response_model=BoxOut, summary="One box")
def box(box_id: str, central: CentralDep, _: Viewer) -> BoxOut:
    if not central.shows(box_id):  # a box of another town of the county
        raise NotFound("box", box_id)
    return service.list_boxes(central.engine, central.site, box_id=box_id)[0]


@router.get("/signs", response_model=list[SignOut], summary="Every sign a box reported")
def signs(central: CentralDep, _: Viewer, box_id: str | None = None) -> list[SignOut]:
    signs = service.list_signs(central.engine, box_id=box_id)
    return [s for s in signs if central.shows(s.box_id)]
