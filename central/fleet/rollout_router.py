"""Rollouts over HTTP: anyone logged in reads them; only an admin starts, halts, resumes or
rolls one back (each audited). The engine does the rest (``rollout_engine``). Under a
county town's path only that town's rollouts exist (another town's is 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from central.deps import Admin, CentralDep, Viewer
from central.fleet import rollout_store
from central.fleet.rollout_models import RollbackIn, RolloutIn, RolloutOut

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])
RolloutId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # the rollouts' INTEGER key


@router.get("/rollouts", response_model=list[RolloutOut], summary="Rollouts, newest first")
def rollouts(
    central: CentralDep, _: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RolloutOut]:
    return rollout_store.list_rollouts(central.engine, limit=limit, town=central.town_id)


@router.get("/rollouts/{rollout_id}", response_model=RolloutOut, summary="One rollout")
def rollout(rollout_id: RolloutId, central: CentralDep, _: Viewer) -> RolloutOut:
    return rollout_store.get(central.engine, rollout_id, town=central.town_id)


@router.post(
    "/rollouts",
    response_model=RolloutOut,
    status_code=201,
    summary="Start a staged rollout of a stored release to a town (admin; audited)",
)
def start(request: RolloutIn, central: CentralDep, actor: Admin) -> RolloutOut:
    return rollout_store.start(
        central.engine,
        central.site,
        releases_dir=central.settings.releases_dir,
        request=request,
        actor=actor.label,
    )


@router.post("/rollouts/{rollout_id}/halt", response_model=RolloutOut, summary="Halt (admin)")
def halt(rollout_id: RolloutId, central: CentralDep, actor: Admin) -> RolloutOut:
    return rollout_store.halt(central.engine, rollout_id, actor=actor.label, town=central.town_id)


@router.post("/rollouts/{rollout_id}/resume", response_model=RolloutOut, summary="Resume (admin)")
def resume(rollout_id: RolloutId, central: CentralDep, actor: Admin) -> RolloutOut:
    return rollout_store.resume(central.engine, rollout_id, actor=actor.label, town=central.town_id)


@router.post(
    "/rollouts/{rollout_id}/rollback",
    response_model=RolloutOut,
    status_code=201,
    summary="Take the boxes a rollout reached to a --rollback release (admin; audited)",
)
def rollback(
    rollout_id: RolloutId, request: RollbackIn, central: CentralDep, actor: Admin
) -> RolloutOut:
    return rollout_store.rollback(
        central.engine,
        rollout_id,
        releases_dir=central.settings.releases_dir,
        version=request.version,
        actor=actor.label,
        town=central.town_id,
    )
