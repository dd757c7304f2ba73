"""Capture intake: a decoded :class:`Capture` from a known camera into the store, once,
with its pictures content-addressed, and the ledger rules applied in the same transaction.

::

    camera --HTTP--> router (token: role camera, name = camera id in the site file)
                       | body bytes + Content-Type
                       v
              firmware_protocols.cameras.decode_*  --DecodeError--> 422, nothing stored
                       | Capture
                       v
              pictures -> PictureStore (sha256)     one transaction:
                                                    capture row (insert-or-ignore on
                                                    camera + event id) -> rules -> ledger

A capture whose camera time is further than the camera's ``max_clock_skew_minutes`` from
its receipt is stored held instead of going to the rules (:mod:`central.captures.clock`).
A Dahua parking-space event's space number becomes a bay through the camera's ``spaces``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import Engine, select

from central.captures import clock
from central.captures.errors import UnknownCamera, WrongCameraKind
from central.db import schema as t
from central.db.engine import insert_ignore
from central.errors import Invalid
from central.evidence.store import PictureStore
from central.ledger.service import evaluate_capture, retrying
from firmware_protocols.cameras import Capture
from site_model.site import Site


def camera_of(site: Site, camera_id: str, *, kind: str | None) -> Any:
    camera = site.cameras.get(camera_id)
    if camera is None:
        raise UnknownCamera(camera_id)
    if kind is not None and camera.kind.value != kind:
        raise WrongCameraKind(camera_id, camera.kind.value, kind)
    return camera


def place_of(site: Site, camera_id: str, capture: Capture) -> tuple[str, str | None]:
    """The capture's place (and bay) from the camera's position in the site file."""
    camera = site.cameras[camera_id]
    if capture.space is not None:
        bay_id = camera.spaces.get(capture.space)
        if bay_id is None:
            raise Invalid(
                f"camera {camera_id} has no bay for its parking space {capture.space!r} "
                "(site file: cameras.<id>.spaces)",
                field="space",
            )
        for lot_id, bay in site.lot_bays():
            if bay == bay_id:
                return f"lot:{lot_id}", bay_id
        for zone_id, bay in site.zone_bays():
            if bay == bay_id:
                return f"zone:{zone_id}", bay_id
    if camera.segment is not None:
        return f"segment:{camera.segment}", None
    if camera.entry is not None:
        return f"entry:{camera.entry}", None
    if capture.zone_id is not None:
        if capture.zone_id not in camera.zones:
            raise Invalid(
                f"camera {camera_id} does not watch zone {capture.zone_id}", field="zone_id"
            )
        return f"zone:{capture.zone_id}", capture.bay_id
    if capture.lot_id is not None:
        if capture.lot_id not in camera.lots:
            raise Invalid(f"camera {camera_id} does not watch lot {capture.lot_id}", field="lot_id")
        return f"lot:{capture.lot_id}", capture.bay_id
    if camera.lots:
        return f"lot:{camera.lots[0]}", capture.bay_id
    return f"zone:{camera.zones[0]}", capture.bay_id


def store_picture(
    engine: Engine, store: PictureStore, data: bytes, content_type: str, camera_id: str
) -> str:
    """Put one picture in the store and record it as given by ``camera_id``; return its
    SHA-256."""
    digest = store.put(data)
    with engine.begin() as conn:
        conn.execute(
            insert_ignore(engine.dialect.name, t.pictures, ["sha256"]),
            {
                "sha256": digest,
                "size": len(data),
                "content_type": content_type[:100],
                "stored_at": time.time(),
            },
        )
        _given_by(conn, engine.dialect.name, [digest], camera_id)
    return digest


def _given_by(conn: Any, dialect: str, digests: list[str], camera_id: str) -> None:
    if digests:
        conn.execute(
            insert_ignore(dialect, t.picture_cameras, ["sha256", "camera_id"]),
            [{"sha256": digest, "camera_id": camera_id} for digest in digests],
        )


def picture_given(engine: Engine, sha256: str, cameras: frozenset[str] | None) -> bool:
    """Whether one of ``cameras`` gave central this picture (None: any camera, or none)."""
    if cameras is None:
        return True
    if not cameras:
        return False
    with engine.connect() as conn:
        found = conn.execute(
            select(t.picture_cameras.c.camera_id)
            .where(
                t.picture_cameras.c.sha256 == sha256,
                t.picture_cameras.c.camera_id.in_(sorted(cameras)),
            )
            .limit(1)
        ).first()
    return found is not None


def intake(
    engine: Engine,
    store: PictureStore,
    site: Site,
    *,
    camera_id: str,
    capture: Capture,
    now: float | None = None,
    max_skew_s: float = 600.0,
    town_speed: float = 1.0,
    town_cameras: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Store a capture once; on first sight apply the rules. Returns what happened.

    ``max_skew_s`` is central's allowance; the camera's own setting in the site file wins.
    ``town_speed`` is the town clock's: a tow order's case limits are town time.
    ``town_cameras`` (a county town's): a picture named by hash must be one they gave.
    """
    now = time.time() if now is None else now
    place, bay_id = place_of(site, camera_id, capture)
    camera = site.cameras[camera_id]
    skew = capture.captured_at.timestamp() - now
    if camera.max_clock_skew_minutes is not None:
        max_skew_s = camera.max_clock_skew_minutes * 60
    held = abs(skew) > max_skew_s
    pictures = []
    named = set()  # named by hash: recorded as this camera's with the capture (parts are)
    for picture in capture.pictures:
        if picture.data is not None:
            digest = store_picture(engine, store, picture.data, picture.content_type, camera_id)
        else:
            digest = picture.sha256 or ""
            named.add(digest)
            if not store.has(digest) or not picture_given(engine, digest, town_cameras):
                raise Invalid(
                    f"picture {picture.name!r} refers to {digest}, which is not "
                    "stored (POST /api/v1/pictures first)",
                    field="pictures",
                )
        pictures.append(
            {
                "sha256": digest,
                "name": picture.name,
                "kind": picture.kind.value,
                "content_type": picture.content_type,
            }
        )
    row = {
        "camera_id": camera_id,
        "event_id": capture.event_id,
        "source": capture.source,
        "kind": capture.kind.value,
        "captured_at": capture.captured_at.timestamp(),
        "received_at": now,
        "plate": capture.plate,
        "plate_raw": capture.plate_raw[:64],
        "plate_readable": capture.plate_readable,
        "plate_color": capture.plate_color.value if capture.plate_color else None,
        "vehicle_class": capture.vehicle_class.value,
        "ga_plate_type": capture.ga_plate_type,
        "place": place,
        "bay_id": bay_id,
        "confidence": capture.confidence,
        "pictures": json.dumps(pictures, ensure_ascii=False),
        "camera_time": capture.captured_at.timestamp(),
        "clock_skew_s": round(skew, 3),
        "held": clock.HOLD if held else None,
        "unmapped": json.dumps([list(u) for u in capture.unmapped], ensure_ascii=False)
        if capture.unmapped
        else None,
    }

    def work(conn: Any) -> dict[str, Any]:
        key = (t.captures.c.camera_id == camera_id, t.captures.c.event_id == capture.event_id)
        existing = conn.execute(select(t.captures.c.id).where(*key)).scalar()
        if existing is not None:
            return {"capture_id": int(existing), "duplicate": True, "outcomes": []}
        conn.execute(insert_ignore(conn.dialect.name, t.captures, ["camera_id", "event_id"]), row)
        _given_by(conn, conn.dialect.name, sorted(named), camera_id)
        capture_id = int(conn.execute(select(t.captures.c.id).where(*key)).scalar_one())
        if held:
            raised = clock.raise_alert(
                conn,
                camera_id=camera_id,
                skew_s=skew,
                now=now,
                lot_id=camera.lots[0] if camera.lots else None,
                zone_id=camera.zones[0] if camera.zones else None,
            )
            return {
                "capture_id": capture_id,
                "duplicate": False,
                "clock_alert": "raised" if raised else None,
                "outcomes": [
                    {
                        "rule": None,
                        "outcome": "held: camera clock",
                        "reason": f"camera time is {skew:+.0f} s from its receipt; a person "
                        "confirms the time before any rule reads it",
                    }
                ],
            }
        resolved = clock.clear_alert(conn, camera_id=camera_id, now=now)
        outcomes = evaluate_capture(
            conn, site, {**row, "id": capture_id}, now=now, town_speed=town_speed
        )
        return {
            "capture_id": capture_id,
            "duplicate": False,
            "outcomes": outcomes,
            "clock_alert": "resolved" if resolved else None,
        }

    result = retrying(engine, work)
    result.update(
        camera_id=camera_id,
        place=place,
        plate=capture.plate,
        plate_color=row["plate_color"],
        vehicle_class=row["vehicle_class"],
        ga_plate_type=capture.ga_plate_type,
        pictures=[p["sha256"] for p in pictures],
        captured_at=capture.captured_at.isoformat(),
        clock_skew_s=row["clock_skew_s"],
        held=row["held"],
        unmapped=[list(u) for u in capture.unmapped],
    )
    return result


def unmapped_values(engine: Engine) -> list[dict[str, Any]]:
    """Every enumeration value cameras sent that no table knows, counted per camera."""
    counts: dict[tuple[str, str, str, str], list[float]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.captures.c.camera_id,
                t.captures.c.source,
                t.captures.c.unmapped,
                t.captures.c.received_at,
            ).where(t.captures.c.unmapped.is_not(None))
        )
        for row in rows:
            for field_name, value in json.loads(row.unmapped):
                seen = counts.setdefault((row.camera_id, row.source, field_name, value), [])
                seen.append(float(row.received_at))
    return [
        {
            "camera_id": camera_id,
            "source": source,
            "field": field_name,
            "value": value,
            "count": len(seen),
            "last_seen": max(seen),
        }
        for (camera_id, source, field_name, value), seen in sorted(
            counts.items(), key=lambda item: -len(item[1])
        )
    ]


def list_captures(
    engine: Engine,
    *,
    plate: str | None = None,
    camera_id: str | None = None,
    place: str | None = None,
    limit: int = 200,
    cameras: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Stored captures, newest first, as the API shows them (times in RFC 3339);
    ``cameras``: a county town's cameras only (None: every camera)."""
    query = select(t.captures).order_by(t.captures.c.captured_at.desc(), t.captures.c.id.desc())
    if cameras is not None:
        query = query.where(t.captures.c.camera_id.in_(sorted(cameras)))
    if plate is not None:
        query = query.where(t.captures.c.plate == plate)
    if camera_id is not None:
        query = query.where(t.captures.c.camera_id == camera_id)
    if place is not None:
        query = query.where(t.captures.c.place == place)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(limit)).all()
    out = []
    for row in rows:
        data = dict(row._mapping)
        data["pictures"] = [
            {**p, "url": f"/api/v1/pictures/{p['sha256']}"} for p in json.loads(data["pictures"])
        ]
        for key in ("captured_at", "received_at", "camera_time"):
            if data.get(key) is not None:
                data[key] = dt.datetime.fromtimestamp(data[key], dt.UTC).isoformat()
        data["unmapped"] = json.loads(data["unmapped"]) if data.get("unmapped") else []
        out.append(data)
    return out


def picture_content_type(engine: Engine, sha256: str) -> str | None:
    """The content type a picture was stored with (None if no row names it)."""
    with engine.connect() as conn:
        kind: str | None = conn.execute(
            select(t.pictures.c.content_type).where(t.pictures.c.sha256 == sha256)
        ).scalar()
    return kind
