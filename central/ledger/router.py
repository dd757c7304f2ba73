"""The ledger over HTTP: entries with evidence, review steps, verify, export, permits."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from central.context import Central
from central.deps import Admin, CentralDep, EngineDep, Operator, Viewer
from central.errors import Invalid, NotFound
from central.ledger import chain, service, workflow
from central.ledger import permits as permit_service
from central.ledger.models import ActionIn, PermitIn

router = APIRouter(prefix="/api/v1", tags=["ledger"])
# A store row id: a bigger number is 422, not a 500 from the database driver.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _bound(value: dt.datetime | None, tz: dt.tzinfo) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=tz)).timestamp()


@router.get("/ledger", summary="Violations and tow orders with status, evidence and actions")
def ledger(
    central: CentralDep,
    _: Viewer,
    status: str | None = None,
    kind: Literal["violation", "tow"] | None = None,
    rule_id: str | None = None,
    plate: str | None = None,
    grid_id: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    tz = ZoneInfo(central.site.site.timezone)
    return service.list_entries(
        central.engine,
        status=status,
        kind=kind,
        rule_id=rule_id,
        plate=plate,
        grid_id=grid_id,
        start=_bound(start, tz),
        end=_bound(end, tz),
        limit=limit,
        grids=central.town_grids(),
    )


@router.get("/ledger/verify", summary="Recompute the hash chain; name the first bad entry")
async def verify(engine: EngineDep, _: Admin) -> dict[str, Any]:
    result = await run_in_threadpool(chain.verify, engine)
    recorded = result.recorded
    return {
        "ok": result.ok,
        "entries": result.entries,
        "head_seq": result.head_seq,
        "head_hash": result.head_hash,
        # The ledger_head row: on success equal to the chain's head, the value to publish.
        "recorded_head": None if recorded is None else {"seq": recorded.seq, "hash": recorded.hash},
        "bad_seq": result.bad_seq,
        "reason": result.reason,
    }


@router.get("/ledger/rules", summary="The rules in force, with their versions")
def rules(central: CentralDep, _: Viewer) -> dict[str, Any]:
    site = central.site
    return {
        "rules": site.rules.model_dump(mode="json"),
        "exempt": [e.model_dump(mode="json") for e in site.exempt],
        "workflow": [
            {"from": state, "action": action, "to": to}
            for (state, action), to in workflow.TRANSITIONS.items()
        ],
    }


@router.get(
    "/ledger/export",
    summary="Entries of a period as CSV or XLSX, with evidence hashes",
    response_class=Response,
)
async def export(
    central: CentralDep,
    _: Operator,
    start: dt.datetime,
    end: dt.datetime,
    format: Literal["csv", "xlsx"] = "csv",
) -> Response:
    tz = ZoneInfo(central.site.site.timezone)
    lo, hi = _bound(start, tz), _bound(end, tz)
    assert lo is not None and hi is not None
    if hi <= lo:
        raise Invalid("end is not after start", field="end")
    name = f"ledger-{start:%Y%m%d}-{end:%Y%m%d}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    write = service.export_csv if format == "csv" else service.export_xlsx
    data = await run_in_threadpool(
        write, central.engine, start=lo, end=hi, grids=central.town_grids()
    )
    if format == "csv":
        return Response(data, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


@router.get("/ledger/{seq}", summary="One violation or tow order with its history")
def entry(seq: RowId, central: CentralDep, _: Viewer) -> dict[str, Any]:
    return _town_entry(central, seq)


def _town_entry(central: Central, seq: int) -> dict[str, Any]:
    """The entry, or 404 for one of another town's grid (a county)."""
    found = service.get_entry(central.engine, seq)
    if central.places is not None and found.get("grid_id") not in central.site.grids:
        raise NotFound("ledger entry", str(seq))
    return found


@router.post(
    "/ledger/{seq}/actions",
    summary="A review step (confirm, void, notify, close, "
    "tow, release): a new entry, never an update",
)
def act(seq: RowId, body: ActionIn, central: CentralDep, actor: Operator) -> dict[str, Any]:
    _town_entry(central, seq)
    out = service.act(
        central.engine, seq=seq, action=body.action, reason=body.reason, actor=actor.label
    )
    central.hub.publish([{"type": "ledger", "seq": seq, "status": out["status"]}])
    return out


@router.get("/permits", summary="Permits: from the site file and issued here")
def permits(central: CentralDep, _: Viewer) -> list[dict[str, Any]]:
    return permit_service.list_permits(central.engine, central.site, town=central.town_id)


@router.post("/permits", summary="Issue a permit (plate, area, validity, reason)", status_code=201)
def add_permit(body: PermitIn, central: CentralDep, actor: Operator) -> dict[str, Any]:
    return permit_service.add_permit(
        central.engine,
        plate=body.plate,
        area=body.area,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        reason=body.reason,
        actor=actor.label,
        town=central.town_id,  # under a county town's path: that town's permit
    )


@router.delete("/permits/{permit_id}", summary="Revoke a permit", status_code=204)
def revoke_permit(permit_id: RowId, central: CentralDep, actor: Operator) -> Response:
    permit_service.revoke_permit(central.engine, permit_id, actor=actor.label, town=central.town_id)
    return Response(status_code=204)
