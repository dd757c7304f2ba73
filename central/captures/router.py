"""Capture intake over HTTP: cameras push, staff read; pictures by their SHA-256."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from central.auth.models import Actor, Role
from central.captures import service
from central.deps import CentralDep, EngineDep, Viewer, require
from central.errors import Invalid, NotFound
from central.evidence.store import PictureStore, is_sha256, picture_store_for
from firmware_protocols.cameras import Capture, decode_dahua, decode_hikvision, decode_parkgrid
from firmware_protocols.errors import DecodeError

CameraToken = Annotated[Actor, Depends(require(Role.CAMERA))]
router = APIRouter(prefix="/api/v1", tags=["captures"])


def get_pictures(request: Request, central: CentralDep) -> PictureStore:
    """The app's picture store (``app.state.pictures``; the disk store by default)."""
    store: PictureStore | None = getattr(request.app.state, "pictures", None)
    if store is None:
        store = picture_store_for(central.settings.pictures_dir)
        request.app.state.pictures = store
    return store


Pictures = Annotated[PictureStore, Depends(get_pictures)]


async def _intake(
    request: Request,
    response: Response,
    central: Any,
    pictures: PictureStore,
    actor: Actor,
    *,
    kind: str,
) -> dict[str, Any]:
    site = central.site
    service.camera_of(site, actor.name, kind=kind)
    body = await request.body()
    content_type = request.headers.get("content-type")
    tz = ZoneInfo(site.site.timezone)
    try:
        capture: Capture
        if kind == "hikvision":
            capture = decode_hikvision(body, content_type, assume_tz=tz)
        elif kind == "dahua":
            capture = decode_dahua(body, content_type, assume_tz=tz)
        else:
            capture = decode_parkgrid(body, content_type)
    except DecodeError as exc:
        raise Invalid(f"{exc.fmt}: {exc.reason}", field="body") from None
    if kind == "parkgrid" and capture.camera_ref != actor.name:
        raise Invalid(
            f"camera_id {capture.camera_ref!r} is not this token's camera {actor.name!r}",
            field="camera_id",
        )
    result = await run_in_threadpool(
        service.intake, central.engine, pictures, site, camera_id=actor.name, capture=capture
    )
    response.status_code = 200 if result["duplicate"] else 201
    notices = [
        {"type": "ledger", "seq": o["seq"], "rule_id": o["rule"], "outcome": o["outcome"]}
        for o in result["outcomes"]
        if o.get("seq") is not None
    ]
    # A tow order opens a case for the place's grid in the same transaction.
    notices += [
        {"type": "case", "ledger_seq": n["seq"]} for n in notices if n["rule_id"] == "left_for_days"
    ]
    if notices:  # the dashboard's ledger and cases pages re-read on these
        central.hub.publish(notices)
    return result


@router.post(
    "/captures",
    summary="A capture in parkgrid's own JSON (alone or multipart with pictures)",
    status_code=201,
)
async def post_capture(
    request: Request,
    response: Response,
    central: CentralDep,
    pictures: Pictures,
    actor: CameraToken,
) -> dict[str, Any]:
    return await _intake(request, response, central, pictures, actor, kind="parkgrid")


@router.post(
    "/cameras/hikvision",
    summary="Hikvision ISAPI EventNotificationAlert (ANPR), XML or multipart with pictures",
    status_code=201,
)
async def post_hikvision(
    request: Request,
    response: Response,
    central: CentralDep,
    pictures: Pictures,
    actor: CameraToken,
) -> dict[str, Any]:
    return await _intake(request, response, central, pictures, actor, kind="hikvision")


@router.post(
    "/cameras/dahua",
    summary="Dahua TrafficParking / TrafficJunction event, JSON or multipart with pictures",
    status_code=201,
)
async def post_dahua(
    request: Request,
    response: Response,
    central: CentralDep,
    pictures: Pictures,
    actor: CameraToken,
) -> dict[str, Any]:
    return await _intake(request, response, central, pictures, actor, kind="dahua")


@router.post(
    "/pictures", summary="Upload one picture (raw image body); returns its SHA-256", status_code=201
)
async def post_picture(
    request: Request, central: CentralDep, pictures: Pictures, actor: CameraToken
) -> dict[str, Any]:
    service.camera_of(central.site, actor.name, kind=None)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("image/"):
        raise Invalid("a picture's Content-Type is image/...", field="content-type")
    body = await request.body()
    if not body:
        raise Invalid("empty picture", field="body")
    digest = await run_in_threadpool(
        service.store_picture, central.engine, pictures, body, content_type
    )
    return {"sha256": digest, "url": f"/api/v1/pictures/{digest}", "size": len(body)}


@router.get(
    "/pictures/{sha256}", summary="An evidence picture by its SHA-256", response_class=Response
)
def get_picture(sha256: str, engine: EngineDep, pictures: Pictures, _: Viewer) -> Response:
    if not is_sha256(sha256):
        raise NotFound("picture", sha256)
    data = pictures.get(sha256)
    if data is None:
        raise NotFound("picture", sha256)
    from sqlalchemy import select

    from central.db import schema as t

    with engine.connect() as conn:
        kind = conn.execute(
            select(t.pictures.c.content_type).where(t.pictures.c.sha256 == sha256)
        ).scalar()
    return Response(
        data,
        media_type=kind or "application/octet-stream",
        headers={"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{sha256}"'},
    )


@router.get("/captures", summary="Stored captures, newest first")
def get_captures(
    engine: EngineDep,
    _: Viewer,
    plate: str | None = None,
    camera_id: str | None = None,
    place: str | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    rows = service.list_captures(engine, plate=plate, camera_id=camera_id, place=place, limit=limit)
    for row in rows:
        for key in ("captured_at", "received_at"):
            row[key] = dt.datetime.fromtimestamp(row[key], dt.UTC).isoformat()
    return rows
