"""Capture cameras: post plate reads to central as Hikvision ISAPI XML or parkgrid JSON.

Theory of operation
-------------------
A real Hikvision ANPR camera, set to "notify surveillance center", POSTs each read as
``multipart/form-data``: the ``EventNotificationAlert`` XML first, then its pictures named
as in ``pictureInfoList``. parkgrid's own format is one JSON document, here also multipart
with its pictures (part ``capture``, then one part per picture). Both are built by pure
functions (:func:`isapi_xml`, :func:`isapi_multipart`, :func:`parkgrid_document`,
:func:`parkgrid_multipart`) and decoded by ``firmware_protocols.cameras`` in the tests, so
the simulator and central agree on one protocol::

    CaptureSeen --build--> body, content type --httpx POST + camera token--> central
        /api/v1/cameras/hikvision?camera_id=ID   (kind "hikvision" in the site file)
        /api/v1/captures                         (kind "parkgrid")

Pictures are tiny JPEGs whose comment segment names the event, so every picture has its
own SHA-256 (the ledger keeps picture hashes as evidence).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx

from simulators.sites import XIGANG
from simulators.town import CaptureSeen
from site_model.site import Site

__all__ = [
    "CameraPoster",
    "CaptureRefused",
    "configure",
    "isapi_multipart",
    "isapi_xml",
    "parkgrid_document",
    "parkgrid_multipart",
    "picture",
]

HIKVISION_PATH = "/api/v1/cameras/hikvision"
PARKGRID_PATH = "/api/v1/captures"
_JPEG_1X1 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////"
    "////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQAB"
    "PxA="
)
# Plate colours as parkgrid names them -> the Chinese prefix Hikvision's Chinese firmware writes.
_COLOUR_PREFIX = {"blue": "蓝", "yellow": "黄", "green": "绿", "white": "白", "black": "黑"}
_HIK_VEHICLE = {"car": "vehicle", "truck": "truck", "bus": "largeBus", "van": "SUVMPV"}


class CaptureRefused(RuntimeError):
    """Central answered a capture with an error status."""

    def __init__(self, *, camera_id: str, status: int, detail: str) -> None:
        self.camera_id = camera_id
        self.status = status
        self.detail = detail
        super().__init__(f"camera {camera_id}: central answered {status}: {detail[:200]}")


def picture(shot: CaptureSeen, kind: str) -> bytes:
    """A 1x1 JPEG with a comment segment naming the event and the kind of picture."""
    comment = f"parkgrid-sim {shot.event_id} {kind} {shot.plate}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return _JPEG_1X1[:2] + segment + _JPEG_1X1[2:]


def _event_uuid(shot: CaptureSeen, camera_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"parkgrid-sim/{camera_id}/{shot.event_id}"))


def _mac(camera_id: str) -> str:
    digest = hashlib.sha256(camera_id.encode()).digest()
    return ":".join(f"{b:02x}" for b in (b"\x44\x19\xb6" + digest[:3]))


def isapi_xml(shot: CaptureSeen, *, camera_id: str, tz: dt.tzinfo) -> bytes:
    """The ``EventNotificationAlert`` a Hikvision ANPR camera sends for ``shot``."""
    when = dt.datetime.fromtimestamp(shot.captured_at, tz).isoformat(timespec="seconds")
    plate = _COLOUR_PREFIX.get(shot.plate_colour, "") + shot.plate
    vehicle = _HIK_VEHICLE.get(shot.vehicle_class, "vehicle")
    gat = "01" if shot.plate_colour == "yellow" else "02"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.0.2.10</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>{_mac(camera_id)}</macAddress>
<channelID>1</channelID>
<dateTime>{when}</dateTime>
<activePostCount>1</activePostCount>
<eventType>ANPR</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>{escape(camera_id)}</channelName>
<UUID>{_event_uuid(shot, camera_id)}</UUID>
<ANPR>
<country>CN</country>
<licensePlate>{escape(plate)}</licensePlate>
<line>1</line>
<direction>forward</direction>
<confidenceLevel>96</confidenceLevel>
<plateType>92TypeCivil</plateType>
<plateColor>{escape(shot.plate_colour)}</plateColor>
<licenseBright>0</licenseBright>
<vehicleType>{vehicle}</vehicleType>
<laneNo>1</laneNo>
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type></pictureInfo>
<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type></pictureInfo>
</pictureInfoList>
</ANPR>
<VehicleGATInfo><palteTypeByGAT>{gat}</palteTypeByGAT></VehicleGATInfo>
</EventNotificationAlert>
""".encode()


def _multipart(parts: list[tuple[str, str | None, str, bytes]], boundary: str) -> bytes:
    out = bytearray()
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\n".encode()
        out += f"Content-Disposition: {disposition}\r\n".encode()
        out += f"Content-Type: {content_type}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def isapi_multipart(shot: CaptureSeen, *, camera_id: str, tz: dt.tzinfo) -> tuple[bytes, str]:
    """XML then the plate and scene pictures, as the camera pushes them."""
    boundary = "boundary" + hashlib.sha256(shot.event_id.encode()).hexdigest()[:16]
    xml = isapi_xml(shot, camera_id=camera_id, tz=tz)
    body = _multipart(
        [
            ("anpr.xml", "anpr.xml", "text/xml", xml),
            (
                "licensePlatePicture.jpg",
                "licensePlatePicture.jpg",
                "image/jpeg",
                picture(shot, "plate"),
            ),
            ("detectionPicture.jpg", "detectionPicture.jpg", "image/jpeg", picture(shot, "scene")),
        ],
        boundary,
    )
    return body, f"multipart/form-data; boundary={boundary}"


def parkgrid_document(shot: CaptureSeen, *, camera_id: str) -> dict[str, Any]:
    """parkgrid's capture JSON for ``shot``, listing its two pictures."""
    when = dt.datetime.fromtimestamp(shot.captured_at, dt.UTC)
    return {
        "camera_id": camera_id,
        "event_id": _event_uuid(shot, camera_id),
        "time": when.isoformat().replace("+00:00", "Z"),
        "plate": shot.plate,
        "plate_color": shot.plate_colour,
        "vehicle_class": shot.vehicle_class,
        "kind": "present",
        "confidence": 96,
        "pictures": [
            {"name": "plate.jpg", "kind": "plate"},
            {"name": "scene.jpg", "kind": "scene"},
        ],
    }


def parkgrid_multipart(shot: CaptureSeen, *, camera_id: str) -> tuple[bytes, str]:
    boundary = "boundary" + hashlib.sha256(shot.event_id.encode()).hexdigest()[:16]
    doc = json.dumps(parkgrid_document(shot, camera_id=camera_id), ensure_ascii=False).encode()
    body = _multipart(
        [
            ("capture", None, "application/json", doc),
            ("plate.jpg", "plate.jpg", "image/jpeg", picture(shot, "plate")),
            ("scene.jpg", "scene.jpg", "image/jpeg", picture(shot, "scene")),
        ],
        boundary,
    )
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass(slots=True)
class CameraPoster:
    """Posts a town's captures to central, each in its camera's own format and token.

    Central knows a camera by its machine token, whose name is the camera id, so
    ``tokens`` maps camera id -> token.
    """

    site: Site
    base_url: str
    tokens: Mapping[str, str]
    client: httpx.AsyncClient

    def request(self, shot: CaptureSeen) -> tuple[str, dict[str, str], bytes, dict[str, str]]:
        """(path, query, body, headers) for one capture: pure, for tests."""
        camera = self.site.cameras.get(shot.camera_id)
        if camera is None:
            raise KeyError(f"camera {shot.camera_id!r} is not in the site file")
        token = self.tokens.get(shot.camera_id)
        if token is None:
            raise KeyError(f"no token for camera {shot.camera_id!r}")
        headers = {"Authorization": f"Bearer {token}"}
        if camera.kind.value == "hikvision":
            tz = _tz(self.site)
            body, ctype = isapi_multipart(shot, camera_id=shot.camera_id, tz=tz)
            return (
                HIKVISION_PATH,
                {"camera_id": shot.camera_id},
                body,
                headers | {"Content-Type": ctype},
            )
        body, ctype = parkgrid_multipart(shot, camera_id=shot.camera_id)
        return PARKGRID_PATH, {}, body, headers | {"Content-Type": ctype}

    async def post(self, shot: CaptureSeen) -> dict[str, Any]:
        path, query, body, headers = self.request(shot)
        response = await self.client.post(
            self.base_url.rstrip("/") + path, params=query, content=body, headers=headers
        )
        if response.status_code >= 300:
            raise CaptureRefused(
                camera_id=shot.camera_id, status=response.status_code, detail=response.text
            )
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {}
        return answer


def _tz(site: Site) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(site.site.timezone)


# --- CLI ------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--central", default="http://127.0.0.1:8000", help="central's base URL")
    parser.add_argument(
        "--tokens",
        type=Path,
        required=True,
        help="JSON file {camera_id: token} (parkgrid central add-token CAMERA_ID --role camera)",
    )
    parser.add_argument("--site", type=Path, default=XIGANG, help="the site file (Xigang)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours to play")
    parser.add_argument("--start", default="04:30", help="local time the day starts (HH:MM)")
    parser.epilog = (
        "Plays the cameras' part of the town's day (`parkgrid sim town`) against central."
    )
    parser.set_defaults(handler=_cli)


def _cli(args: argparse.Namespace) -> int:
    from simulators.town import TownClock, default_start, plan_town
    from site_model.site import SiteError, load_site

    try:
        tokens = json.loads(args.tokens.read_text())
    except (OSError, ValueError) as exc:
        print(f"sim cameras: cannot read {args.tokens}: {exc}", file=sys.stderr)
        return 2
    try:
        site = load_site(args.site)
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    start = default_start(site, at=args.start)
    shots = [
        e
        for e in plan_town(site, seed=args.seed, start=start, hours=args.hours)
        if isinstance(e, CaptureSeen)
    ]
    clock = TownClock(sim_start=start, wall_start=time.time(), speed=args.speed)

    async def main() -> int:
        failures = 0
        async with httpx.AsyncClient(timeout=10) as client:
            poster = CameraPoster(site=site, base_url=args.central, tokens=tokens, client=client)
            for shot in shots:
                await asyncio.sleep(max(0.0, clock.wall(shot.at) - time.time()))
                try:
                    await poster.post(shot)
                    print(f"{shot.camera_id} {shot.plate} ({shot.why})")
                except (CaptureRefused, httpx.HTTPError) as exc:
                    failures += 1
                    print(f"{shot.camera_id}: {exc}", file=sys.stderr)
        return 1 if failures else 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
