"""``GET /api/v1/county``: each town's figures and a sparkline (county staff only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from central.county.service import overview
from central.deps import CentralDep, CountyViewer

router = APIRouter(prefix="/api/v1", tags=["county"])


@router.get(
    "/county",
    summary="Each town's lots, bays free/occupied/unknown, boxes online, open cases and a "
    "24-hour occupancy sparkline (county staff)",
)
async def county(central: CentralDep, _: CountyViewer) -> dict[str, Any]:
    sites = {town_id: town.site for town_id, town in central.towns.items()}
    body = await run_in_threadpool(overview, central.engine, sites)
    return {"county": central.site.id, "name": central.site.site.name, **body}
