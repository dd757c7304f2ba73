from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from central.deps import CentralDep, Viewer
from central.sites import service
from central.sites.models import SiteOut, SiteProblemOut

router = APIRouter(prefix="/api/v1/site", tags=["site"])


@router.get("", response_model=SiteOut, summary="The site file as loaded")
def site(central: CentralDep, _: Viewer) -> SiteOut:
    info = central.site.site
    return SiteOut(
        id=info.id,
        name=info.name,
        timezone=info.timezone,
        document=central.site.model_dump(mode="json", by_alias=True),
    )


@router.get(
    "/problems",
    response_model=list[SiteProblemOut],
    summary="Where what boxes publish disagrees with the site file",
)
def problems(central: CentralDep, _: Viewer, box_id: str | None = None) -> list[SiteProblemOut]:
    return [
        SiteProblemOut(
            box_id=row["box_id"],
            subject=row["subject"],
            message=row["message"],
            first_seen=dt.datetime.fromtimestamp(row["first_seen_at"], dt.UTC),
            last_seen=dt.datetime.fromtimestamp(row["last_seen_at"], dt.UTC),
            count=row["count"],
        )
        for row in service.list_problems(central.engine, box_id=box_id)
        if central.shows(row["box_id"])  # a county town's: its boxes' problems
    ]
