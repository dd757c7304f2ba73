"""Hostile camera bodies against a real central: each refused with a 4xx, nothing stored.

One app (SQLite, the small test site, camera tokens C1 hikvision, C2 dahua, C3 parkgrid)
takes every case in turn; after each, the captures and pictures tables and the picture
directory are exactly as before. tests/central/test_captures.py holds the intake's own
cases (the billion laughs, an external entity, truncated XML, a wrong camera kind); here
they are one table with the rest of the hostile bodies, recorded for docs/reliability.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from central.app import CAMERA_MAX_BODY_BYTES, create_app
from central.auth.models import Role
from central.auth.service import issue_token
from central.db import schema as t
from central.db.engine import make_engine
from central.settings import CentralSettings
from firmware_protocols.cameras.hikvision import MAX_PICTURE_BYTES
from tests.central.helpers import SITE_FILE
from tests.faults.rig import record
from tests.firmware_protocols.camera_corpus import STREAM_TYPE, sample, stream_part
from tests.firmware_protocols.test_cameras import (
    BILLION_LAUGHS,
    JPEG_PLATE,
    MP_TYPE,
    XXE,
    anpr_xml,
    dahua_event,
    hik_multipart,
    multipart,
)

HIK, DAHUA, OWN, PICTURES = (
    "/api/v1/cameras/hikvision",
    "/api/v1/cameras/dahua",
    "/api/v1/captures",
    "/api/v1/pictures",
)
CAMERA_OF = {HIK: "C1", DAHUA: "C2", OWN: "C3", PICTURES: "C1"}

# A DTD fetched from elsewhere: a parser that follows it makes a network call on our behalf.
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE EventNotificationAlert SYSTEM "http://127.0.0.1:9/evil.dtd">
<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>"""
# A parameter entity reading a local file into the DTD itself.
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % ext SYSTEM "file:///etc/hostname"> %ext;]>
<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>"""
# Quadratic blow-up: one big entity used many times (no nesting for a depth limit to catch).
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]><EventNotificationAlert><eventType>ANPR</eventType><x>'
    + b"&a;" * 2_000
    + b"</x></EventNotificationAlert>"
)
OVER_CAP = CAMERA_MAX_BODY_BYTES + 1


def _dahua_stream(*parts: tuple[str, bytes]) -> bytes:
    return b"".join(stream_part(ctype, data) for ctype, data in parts)


def _deep_json(depth: int) -> bytes:
    return b'{"eventType":"ANPR","ANPR":' + b'{"a":' * depth + b"1" + b"}" * (depth + 1)


def _picture_multipart(size: int) -> bytes:
    picture = b"\xff\xd8\xff\xe0" + b"\x00" * size + b"\xff\xd9"
    return multipart(
        [("anpr.xml", "text/xml", anpr_xml(uuid="big")), ("plate.jpg", "image/jpeg", picture)]
    )


def _chunks(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One hostile body: where it goes, as what, and the status it must get."""

    id: str
    path: str
    body: bytes
    content_type: str
    status: int
    stream: bool = False  # no Content-Length: the limit must hold while the body streams in


CASES = [
    Case(id="billion-laughs", path=HIK, body=BILLION_LAUGHS, content_type="text/xml", status=422),
    Case(id="quadratic-blowup", path=HIK, body=QUADRATIC, content_type="text/xml", status=422),
    Case(id="external-entity-file", path=HIK, body=XXE, content_type="text/xml", status=422),
    Case(
        id="external-parameter-entity",
        path=HIK,
        body=PARAMETER_ENTITY,
        content_type="text/xml",
        status=422,
    ),
    Case(id="external-dtd", path=HIK, body=EXTERNAL_DTD, content_type="text/xml", status=422),
    Case(
        id="multipart-with-billion-laughs",
        path=HIK,
        body=hik_multipart(BILLION_LAUGHS),
        content_type=MP_TYPE,
        status=422,
    ),
    Case(
        id="multipart-with-external-dtd",
        path=HIK,
        body=hik_multipart(EXTERNAL_DTD),
        content_type=MP_TYPE,
        status=422,
    ),
    Case(
        id="multipart-truncated",
        path=HIK,
        body=hik_multipart()[:-30],
        content_type=MP_TYPE,
        status=422,
    ),
    Case(
        id="multipart-cut-in-a-picture",
        path=HIK,
        body=hik_multipart()[: hik_multipart().index(JPEG_PLATE) + 4],
        content_type=MP_TYPE,
        status=422,
    ),
    Case(
        id="multipart-no-boundary",
        path=HIK,
        body=hik_multipart(),
        content_type="multipart/form-data",
        status=422,
    ),
    Case(
        id="picture-over-8-MiB-part-cap",
        path=HIK,
        body=_picture_multipart(MAX_PICTURE_BYTES + 1),
        content_type=MP_TYPE,
        status=422,
    ),
    Case(
        id="oversize-picture",
        path=HIK,
        body=_picture_multipart(OVER_CAP),
        content_type=MP_TYPE,
        status=413,
    ),
    Case(
        id="oversize-picture-streamed",
        path=HIK,
        body=_picture_multipart(OVER_CAP),
        content_type=MP_TYPE,
        status=413,
        stream=True,
    ),
    Case(
        id="oversize-raw-picture",
        path=PICTURES,
        body=b"\xff\xd8" + b"\x00" * OVER_CAP,
        content_type="image/jpeg",
        status=413,
    ),
    Case(id="xml-as-json", path=HIK, body=anpr_xml(), content_type="application/json", status=422),
    # Hikvision firmware pushes XML as text/plain or with no Content-Type at all, so the
    # decoder takes those by design (firmware_protocols/cameras/hikvision.py); the wrong
    # types here are ones no camera sends for XML.
    Case(id="xml-as-jpeg", path=HIK, body=anpr_xml(), content_type="image/jpeg", status=422),
    Case(
        id="xml-as-form",
        path=HIK,
        body=anpr_xml(),
        content_type="application/x-www-form-urlencoded",
        status=422,
    ),
    Case(
        id="dahua-json-as-xml",
        path=DAHUA,
        body=json.dumps(dahua_event()).encode(),
        content_type="text/xml",
        status=422,
    ),
    Case(
        id="own-capture-as-xml",
        path=OWN,
        body=anpr_xml(),
        content_type="application/xml",
        status=422,
    ),
    Case(
        id="picture-as-text",
        path=PICTURES,
        body=JPEG_PLATE,
        content_type="text/plain",
        status=422,
    ),
    Case(id="empty-picture", path=PICTURES, body=b"", content_type="image/jpeg", status=422),
    Case(
        id="dahua-text-index-9999",
        path=DAHUA,
        body=b"Events[9999].Code=TrafficJunction\nEvents[9999].EventID=1",
        content_type="text/plain",
        status=422,
    ),
    Case(
        id="dahua-text-value-and-object",
        path=DAHUA,
        body=b"Events[0]=x\nEvents[0].Code=TrafficJunction",
        content_type="text/plain",
        status=422,
    ),
    Case(
        id="dahua-stream-only-broken-event",
        path=DAHUA,
        body=_dahua_stream(("text/plain", b"Code=TrafficJunction;action=Pulse;data={broken")),
        content_type=STREAM_TYPE,
        status=422,
    ),
    Case(
        id="dahua-stream-picture-before-any-event",
        path=DAHUA,
        body=_dahua_stream(("image/jpeg", JPEG_PLATE)),
        content_type=STREAM_TYPE,
        status=422,
    ),
    Case(
        id="dahua-stream-600-parts",
        path=DAHUA,
        body=_dahua_stream(*[("text/plain", b"Heartbeat")] * 600),
        content_type=STREAM_TYPE,
        status=422,
    ),
    Case(
        id="dahua-itsapi-bad-base64",
        path=DAHUA,
        body=sample("dahua-itsapi-tollgate.json").replace(b'"Content": "', b'"Content": "!!'),
        content_type="application/json",
        status=422,
    ),
    Case(
        id="hikvision-json-nested-100-deep",
        path=HIK,
        body=_deep_json(100),
        content_type="application/json",
        status=422,
    ),
]


@pytest.fixture(scope="module")
def camera_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Engine]]:
    tmp = tmp_path_factory.mktemp("camera-bodies")
    db_url = f"sqlite:///{tmp / 'central.db'}"
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=db_url,
        ingest=False,
        pictures_dir=tmp / "pictures",
        max_body_bytes=4096,
    )
    with TestClient(create_app(settings)) as client:
        engine = make_engine(db_url)
        tokens = {
            name: issue_token(engine, name=name, role=Role.CAMERA, ttl_s=3600, actor="test")[0]
            for name in ("C1", "C2", "C3")
        }
        client.tokens = tokens  # type: ignore[attr-defined]
        client.pictures_dir = tmp / "pictures"  # type: ignore[attr-defined]
        yield client, engine
        engine.dispose()
    record(
        "badinput",
        "camera bodies",
        {
            "cases": len(CASES),
            "refused": len(REFUSED),
            "how": _how(),
            "reasons": [f"{k}: {v}" for k, v in REFUSED.items()],
        },
    )


REFUSED: dict[str, str] = {}
GROUPS = (
    (("laughs", "blowup", "entity", "dtd"), "any DTD refused before parsing (defusedxml)"),
    (("truncated", "cut-in", "no-boundary"), "multipart that does not parse"),
    (("part-cap",), "picture part over 8 MiB"),
    (("oversize",), "body over the 16 MiB camera cap, by Content-Length or while streaming"),
    (("-as-", "empty"), "wrong content type or empty body"),
    (
        ("dahua-text", "dahua-stream", "dahua-itsapi", "hikvision-json"),
        "Dahua text, stream or ITSAPI part, or JSON alert, unreadable",
    ),
)


def _how() -> str:
    """The refusals grouped by kind, with their statuses, for the table."""
    out = []
    for words, label in GROUPS:
        hits = [r for k, r in REFUSED.items() if any(w in k for w in words)]
        if hits:
            statuses = "/".join(sorted({r.split(" ", 1)[0] for r in hits}))
            out.append(f"{statuses} {label} ({len(hits)})")
    return "; ".join(out) + "; nothing stored in each case"


def _stored(client: TestClient, engine: Engine) -> tuple[int, int, list[str]]:
    with engine.connect() as conn:
        captures = conn.execute(select(func.count()).select_from(t.captures)).scalar()
        pictures = conn.execute(select(func.count()).select_from(t.pictures)).scalar()
    root: Path = client.pictures_dir  # type: ignore[attr-defined]
    files = sorted(str(p) for p in root.rglob("*")) if root.exists() else []
    return int(captures or 0), int(pictures or 0), files


def test_camera_bodies_a_good_push_is_stored(camera_app: tuple[TestClient, Engine]) -> None:
    """The baseline the refusals are measured against: a real push is stored (201)."""
    client, engine = camera_app
    token = client.tokens["C1"]  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MP_TYPE}
    before = _stored(client, engine)
    response = client.post(HIK, content=hik_multipart(), headers=headers)
    assert response.status_code == 201, response.text
    after = _stored(client, engine)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 2 and len(after[2]) > 0


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_camera_bodies_hostile_refused_nothing_stored(
    camera_app: tuple[TestClient, Engine], case: Case
) -> None:
    """Each hostile body gets its 4xx with a reason; captures, pictures and files unchanged."""
    client, engine = camera_app
    token = client.tokens[CAMERA_OF[case.path]]  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {token}"}
    headers["Content-Type"] = case.content_type
    before = _stored(client, engine)
    content: Any = _chunks(case.body) if case.stream else case.body
    response = client.post(case.path, content=content, headers=headers)
    assert response.status_code == case.status, response.text[:300]
    detail = str(response.json().get("detail", ""))
    assert detail, "a refusal says why"
    assert "root:" not in response.text and "/bin/" not in response.text  # no file leaked back
    assert _stored(client, engine) == before
    REFUSED[case.id] = f"{response.status_code} {detail[:60]}"
