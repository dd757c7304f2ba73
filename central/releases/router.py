"""``GET /api/v1/releases`` and ``GET /api/v1/releases/{version}/bundle`` (with HTTP Range).

The bundle is served by Starlette's ``FileResponse``, which answers ``Range`` (206 with
``Content-Range``, 416 with ``Content-Range: bytes */SIZE`` for a range past the end) and
``If-Range``; its ETag is set to the bundle's sha256, so a box resuming a download against an
ETag that no longer matches gets the whole (new) file with 200 and starts again.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel

from central.auth.models import Actor
from central.deps import CentralDep, current_actor
from central.errors import NotFound
from central.releases import store
from central.releases.access import may_fetch

router = APIRouter(prefix="/api/v1", tags=["releases"])


class ReleaseOut(BaseModel):
    version: str
    sha256: str
    size: int
    created: str
    rollback: bool
    key: str
    added_at: float


def _town(central: CentralDep) -> str:
    return central.site.id  # one town per central today: see central/releases/access.py


@router.get("/releases", response_model=list[ReleaseOut], summary="The stored releases")
def releases(
    central: CentralDep, actor: Annotated[Actor, Depends(current_actor)]
) -> list[ReleaseOut]:
    may_fetch(actor, central.site, _town(central))
    return [ReleaseOut(**vars_of(r)) for r in store.stored(central.settings.releases_dir)]


def vars_of(release: store.StoredRelease) -> dict[str, object]:
    return {name: getattr(release, name) for name in release.__slots__}


@router.get(
    "/releases/{version}/bundle",
    response_class=FileResponse,
    summary="A release bundle (admin or a box of the town; HTTP Range; ETag = sha256)",
)
def bundle(
    version: str, central: CentralDep, actor: Annotated[Actor, Depends(current_actor)]
) -> FileResponse:
    may_fetch(actor, central.site, _town(central))
    release = store.get(central.settings.releases_dir, version)
    if release is None:
        raise NotFound("release", version)
    return FileResponse(
        store.bundle_path(central.settings.releases_dir, version),
        media_type="application/x-tar",
        filename=f"parkgrid-{release.version}.tar",
        headers={"ETag": f'"{release.sha256}"'},
    )
