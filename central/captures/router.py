"""Capture intake over HTTP: cameras push, staff read; pictures by their SHA-256."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from central.auth.models import Actor, Role
from central.captures import clock, page, service
from central.captures.models import ConfirmTimeIn
from central.captures.notices import publish_results
from central.captures.reading import check_reading, read_body
from central.deps import CentralDep, Operator, Viewer, require
from central.errors import Invalid, NotFound
from central.evidence.store import PictureStore, is_sha256, picture_store_for
from firmware_protocols.errors import DecodeError

CameraToken = Annotated[Actor, Depends(require(Role.CAMERA))]
router = APIRouter(prefix="/api/v1", tags=["captures"])
__all__ = ["page", "router"]  # page: the dashboard's Cameras page, registered on import


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
    camera = service.camera_of(site, actor.name, kind=kind)
    body = await request.body()
    content_type = request.headers.get("content-type")
    tz = ZoneInfo(camera.timezone or site.site.timezone)
    try:
        reading = read_body(kind, body, content_type, tz)
    except DecodeError as exc:
        raise Invalid(f"{exc.fmt}: {exc.reason}", field="body") from None
    refused = check_reading(kind, reading)
    results = []
    for capture in reading.captures:
        if kind == "parkgrid" and capture.camera_ref != actor.name:
            raise Invalid(
                f"camera_id {capture.camera_ref!r} is not this token's camera {actor.name!r}",
                field="camera_id",
            )
        try:
            results.append(
                await run_in_threadpool(
                    service.intake,
                    central.engine,
                    pictures,
                    site,
                    camera_id=actor.name,
                    capture=capture,
                    max_skew_s=central.settings.camera_clock_skew_minutes * 60,
                    town_speed=central.town.speed,
                    town_cameras=central.town_cameras(),
                )
            )
        except Invalid as exc:
            if len(reading.captures) == 1:
                raise
            refused.append({"where": f"event {capture.event_id}", "reason": str(exc)})
    fresh = any(not r["duplicate"] for r in results)
    response.status_code = 201 if fresh else 200
    publish_results(central, results)
    # One capture: its result at the top (as before streams); always the whole reading.
    out: dict[str, Any] = dict(results[0]) if len(results) == 1 else {}
    out.update(
        captures=results,
        refused=refused,
        ignored=list(reading.ignored),
        heartbeats=reading.heartbeats,
    )
    return out


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
    summary="Hikvision ISAPI EventNotificationAlert (ANPR), XML or JSON, alone or multipart",
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
    summary="Dahua events: JSON, key=value text, attach/snapManager streams, ITSAPI; "
    "a stream's events are stored one capture each",
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
    "/cameras/dahua/NotificationInfo/TollgateInfo",
    summary="Dahua ITSAPI upload: TollgateInfo with base64 pictures",
    status_code=201,
)
async def post_dahua_itsapi(
    request: Request,
    response: Response,
    central: CentralDep,
    pictures: Pictures,
    actor: CameraToken,
) -> dict[str, Any]:
    return await _intake(request, response, central, pictures, actor, kind="dahua")


@router.post(
    "/cameras/dahua/NotificationInfo/KeepAlive",
    summary="Dahua ITSAPI heartbeat: answered, nothing stored",
)
def post_dahua_keepalive(central: CentralDep, actor: CameraToken) -> dict[str, Any]:
    service.camera_of(central.site, actor.name, kind="dahua")
    return {"ok": True, "camera_id": actor.name}


@router.post(
    "/captures/{capture_id}/confirm-time",
    summary="A person confirms the time of a capture held for its camera's clock",
)
def confirm_time(
    capture_id: Annotated[int, Path(ge=1, le=2**62)],
    body: ConfirmTimeIn,
    central: CentralDep,
    actor: Operator,
) -> dict[str, Any]:
    out = clock.confirm_time(
        central.engine,
        central.site,
        capture_id=capture_id,
        use=body.use,
        reason=body.reason,
        actor=actor.label,
        town_speed=central.town.speed,
        cameras=frozenset(central.site.cameras) if central.places is not None else None,
    )
    publish_results(central, [out])
    return out


@router.post(
    "/cameras/{camera_id}/confirm-held",
    summary="Confirm the time of every capture of a camera held for its clock, oldest first",
)
def confirm_held(
    camera_id: str, body: ConfirmTimeIn, central: CentralDep, actor: Operator
) -> dict[str, Any]:
    service.camera_of(central.site, camera_id, kind=None)
    out = clock.confirm_held(
        central.engine,
        central.site,
        camera_id=camera_id,
        use=body.use,
        reason=body.reason,
        actor=actor.label,
        town_speed=central.town.speed,
    )
    publish_results(central, out)
    return {"camera_id": camera_id, "confirmed": out}


@router.get("/captures/held", summary="Captures held for their camera's clock, oldest first")
def held(central: CentralDep, _: Viewer) -> list[dict[str, Any]]:
    return [c for c in clock.held_captures(central.engine) if central.shows(c.get("camera_id"))]


@router.get(
    "/cameras/unmapped",
    summary="Enumeration values cameras sent that no table knows, counted per camera",
)
def unmapped(central: CentralDep, _: Viewer) -> list[dict[str, Any]]:
    values = service.unmapped_values(central.engine)
    return [v for v in values if central.shows(v.get("camera_id"))]


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
        service.store_picture, central.engine, pictures, body, content_type, actor.name
    )
    return {"sha256": digest, "url": f"/api/v1/pictures/{digest}", "size": len(body)}


@router.get(
    "/pictures/{sha256}", summary="An evidence picture by its SHA-256", response_class=Response
)
def get_picture(sha256: str, central: CentralDep, pictures: Pictures, _: Viewer) -> Response:
    # A county town's view: only a picture one of the town's cameras gave central.
    if not is_sha256(sha256) or not service.picture_given(
        central.engine, sha256, central.town_cameras()
    ):
        raise NotFound("picture", sha256)
    data = pictures.get(sha256)
    if data is None:
        raise NotFound("picture", sha256)
    kind = service.picture_content_type(central.engine, sha256)
    return Response(
        data,
        media_type=kind or "application/octet-stream",
        headers={"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{sha256}"'},
    )


@router.get("/captures", summary="Stored captures, newest first")
def get_captures(
    central: CentralDep,
    _: Viewer,
    plate: str | None = None,
    camera_id: str | None = None,
    place: str | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    return service.list_captures(
        central.engine,
        plate=plate,
        camera_id=camera_id,
        place=place,
        limit=limit,
        cameras=frozenset(central.site.cameras) if central.places is not None else None,
    )
