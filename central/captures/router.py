"""Capture intake over HTTP: cameras push, staff read; pictures by their SHA-256."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from central.auth.models import Actor, Role
from central.captures import clock, page, service
from central.cases.service import sync_alert_cases
from central.deps import CentralDep, EngineDep, Operator, Viewer, require
from central.errors import Invalid, NotFound
from central.evidence.store import PictureStore, is_sha256, picture_store_for
from firmware_protocols.cameras import Reading, decode_parkgrid, read_dahua, read_hikvision
from firmware_protocols.errors import DecodeError

CameraToken = Annotated[Actor, Depends(require(Role.CAMERA))]
router = APIRouter(prefix="/api/v1", tags=["captures"])
log = logging.getLogger(__name__)
__all__ = ["page", "router"]  # page: the dashboard's Cameras page, registered on import


def get_pictures(request: Request, central: CentralDep) -> PictureStore:
    """The app's picture store (``app.state.pictures``; the disk store by default)."""
    store: PictureStore | None = getattr(request.app.state, "pictures", None)
    if store is None:
        store = picture_store_for(central.settings.pictures_dir)
        request.app.state.pictures = store
    return store


Pictures = Annotated[PictureStore, Depends(get_pictures)]


def read_body(kind: str, body: bytes, content_type: str | None, camera_tz: dt.tzinfo) -> Reading:
    """The camera's body read by its kind's reader (DecodeError for an unreadable body)."""
    if kind == "hikvision":
        return read_hikvision(body, content_type, assume_tz=camera_tz)
    if kind == "dahua":
        return read_dahua(body, content_type, camera_tz=camera_tz)
    return Reading(captures=(decode_parkgrid(body, content_type),))


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
    refused = [{"where": r.where, "reason": r.reason} for r in reading.refused]
    if not reading.captures and refused:
        first = reading.refused[0]
        raise Invalid(f"{kind}: {first.where}: {first.reason}", field="body")
    if not reading.captures and not reading.heartbeats:
        reason = (
            f"{', '.join(reading.ignored)}: not ANPR or a plate event (nothing stored)"
            if reading.ignored
            else "no event in the body (nothing stored)"
        )
        raise Invalid(f"{kind}: {reason}", field="body")
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
                )
            )
        except Invalid as exc:
            if len(reading.captures) == 1:
                raise
            refused.append({"where": f"event {capture.event_id}", "reason": str(exc)})
    fresh = any(not r["duplicate"] for r in results)
    response.status_code = 201 if fresh else 200
    _publish(central, results)
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


class ConfirmTimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use: Literal["camera", "received"] = Field(
        description="which time the capture has: the camera's stated time or its receipt"
    )
    reason: str | None = Field(default=None, max_length=500)


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
    )
    _publish(central, [out])
    return out


def _publish(central: Any, results: list[dict[str, Any]]) -> None:
    """Tell the dashboard's ledger and cases pages about new entries."""
    notices = [
        {"type": "ledger", "seq": o["seq"], "rule_id": o["rule"], "outcome": o["outcome"]}
        for result in results
        for o in result["outcomes"]
        if o.get("seq") is not None
    ]
    # A tow order opens a case for the place's grid in the same transaction.
    notices += [
        {"type": "case", "ledger_seq": n["seq"]} for n in notices if n["rule_id"] == "left_for_days"
    ]
    # A held capture: the Cameras page re-reads. A camera's clock alert raised or resolved:
    # cases for it (when the site's duty asks), and the alerts page re-reads.
    notices += [
        {"type": "capture_held", "capture_id": r["capture_id"], "camera_id": r.get("camera_id")}
        for r in results
        if r.get("held") and not r.get("duplicate")
    ]
    for result in results:
        change = result.get("clock_alert")
        if change and result.get("camera_id"):
            box_id, alert_id = clock.alert_key(result["camera_id"])
            notices.append(
                {
                    "type": f"alert_{change}",
                    "box_id": box_id,
                    "alert_id": alert_id,
                    "alert_type": clock.ALERT_TYPE,
                }
            )
            try:
                sync_alert_cases(central.engine, central.site, keys=[(box_id, alert_id)])
            except Exception:  # the periodic sweep opens it later
                log.exception("opening a case for camera %s's clock alert failed", box_id)
    if notices:
        central.hub.publish(notices)


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
    )
    _publish(central, out)
    return {"camera_id": camera_id, "confirmed": out}


@router.get("/captures/held", summary="Captures held for their camera's clock, oldest first")
def held(engine: EngineDep, _: Viewer) -> list[dict[str, Any]]:
    rows = clock.held_captures(engine)
    for row in rows:
        for key in ("camera_time", "received_at"):
            row[key] = dt.datetime.fromtimestamp(row[key], dt.UTC).isoformat()
    return rows


@router.get(
    "/cameras/unmapped",
    summary="Enumeration values cameras sent that no table knows, counted per camera",
)
def unmapped(engine: EngineDep, _: Viewer) -> list[dict[str, Any]]:
    return service.unmapped_values(engine)


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
        for key in ("captured_at", "received_at", "camera_time"):
            if row.get(key) is not None:
                row[key] = dt.datetime.fromtimestamp(row[key], dt.UTC).isoformat()
        row["unmapped"] = json.loads(row["unmapped"]) if row.get("unmapped") else []
    return rows
