"""Cases and the per-grid report over HTTP."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from central.cases import service
from central.cases.models import CaseActionIn
from central.cases.sweeper import county_towns, sweep_now
from central.context import Central
from central.deps import Admin, CentralDep, Operator, Viewer
from central.errors import NotFound
from site_model.site import Site

router = APIRouter(prefix="/api/v1", tags=["cases"])
# A store row id: a bigger number is 422, not a 500 from the database driver.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Month = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM, the town's; default its month now"),
]


@router.get("/cases", summary="Cases, newest first (state, grid, kind, overdue)")
def cases(
    central: CentralDep,
    _: Viewer,
    state: str | None = None,
    grid_id: str | None = None,
    kind: str | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    return service.list_cases(
        central.engine,
        state=state,
        grid_id=grid_id,
        kind=kind,
        overdue=overdue,
        limit=limit,
        grids=central.town_grids(),
    )


def _town_case(central: Central, case_id: int) -> dict[str, Any]:
    """The case, or 404 for a case of another town (a county: by its grid)."""
    found = service.get_case(central.engine, case_id)
    if central.places is not None and found.get("grid_id") not in central.site.grids:
        raise NotFound("case", str(case_id))
    return found


def _sweep_towns(central: Central) -> dict[str, Site] | None:
    """What a sweep asked here covers: a county town's view its town; the county's view
    every town (each by its own rules); a single town, None."""
    towns = county_towns(central)
    if towns is not None and central.town_id is not None:
        return {central.town_id: central.site}
    return towns


@router.post(
    "/cases/sweep", summary="Run the sweep now: cases for alerts, escalations, tows for long stays"
)
async def sweep(central: CentralDep, _: Admin) -> dict[str, Any]:
    opened, counts, tows = await run_in_threadpool(
        sweep_now,
        central.engine,
        central.site,
        town_speed=central.town.speed,
        towns=_sweep_towns(central),
        grids=central.town_grids(),
    )
    if opened or any(counts.values()) or tows:
        central.hub.publish([{"type": "case", "sweep": True}])
    if tows:
        central.hub.publish([{"type": "ledger", "seq": seq} for seq in tows])
    return {"opened_from_alerts": opened, **counts, "tow_orders": tows}


@router.get("/cases/{case_id}", summary="One case with its history and allowed actions")
def case(case_id: RowId, central: CentralDep, _: Viewer) -> dict[str, Any]:
    return _town_case(central, case_id)


@router.post("/cases/{case_id}/actions", summary="Move a case along the loop")
def act(case_id: RowId, body: CaseActionIn, central: CentralDep, actor: Operator) -> dict[str, Any]:
    _town_case(central, case_id)
    out = service.act(
        central.engine, case_id=case_id, action=body.action, actor=actor.label, note=body.note
    )
    central.hub.publish([{"type": "case", "id": case_id, "state": out["state"]}])
    return out


@router.get("/reports/grids", summary="Per-grid figures for a month")
def grid_report(central: CentralDep, _: Viewer, month: Month = None) -> dict[str, Any]:
    return service.grid_report(
        central.engine,
        central.site,
        month=month,
        town=central.town.mapping(),
        site_grids_only=central.places is not None,
    )


@router.get(
    "/reports/grids.xlsx", summary="Per-grid figures for a month, as XLSX", response_class=Response
)
async def grid_report_xlsx(central: CentralDep, _: Viewer, month: Month = None) -> Response:
    report = await run_in_threadpool(
        service.grid_report,
        central.engine,
        central.site,
        month=month,
        town=central.town.mapping(),
        site_grids_only=central.places is not None,
    )
    data = await run_in_threadpool(service.grid_report_xlsx, report)
    safe = re.sub(r"[^0-9-]", "", report["month"])
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="grids-{safe}.xlsx"'},
    )
