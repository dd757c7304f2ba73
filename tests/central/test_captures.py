"""Capture intake over HTTP: camera tokens, ISAPI/Dahua/parkgrid bodies, hostile input."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user, issue_token
from central.db import schema as t
from central.db.engine import make_engine
from central.settings import CentralSettings
from tests.central.helpers import SITE_FILE
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


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """An app on SQLite (no MQTT), an operator, an admin and camera tokens C1, C2, C3, C9."""
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    settings = CentralSettings(
        site_file=SITE_FILE, database_url=db_url, ingest=False, max_body_bytes=4096
    )
    with TestClient(create_app(settings)) as client:
        engine = make_engine(db_url)
        tokens = {}
        for name in ("C1", "C2", "C3", "C9"):
            tokens[name], _ = issue_token(
                engine, name=name, role=Role.CAMERA, ttl_s=3600, actor="test"
            )
        for name, role in (("olga", Role.OPERATOR), ("ada", Role.ADMIN)):
            add_user(engine, username=name, password=f"{name}-password", role=role, actor="test")
            response = client.post(
                "/api/v1/auth/login", data={"username": name, "password": f"{name}-password"}
            )
            tokens[name] = response.json()["access_token"]
        client.tokens = tokens  # type: ignore[attr-defined]
        client.engine = engine  # type: ignore[attr-defined]
        yield client
        engine.dispose()


def _auth(client: TestClient, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.tokens[name]}"}  # type: ignore[attr-defined]


def _count(client: TestClient, table) -> int:  # type: ignore[no-untyped-def]
    with client.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table)).scalar())


def _post_hik(client: TestClient, body: bytes, content_type: str = MP_TYPE, camera: str = "C1"):
    headers = {**_auth(client, camera), "Content-Type": content_type}
    return client.post("/api/v1/cameras/hikvision", content=body, headers=headers)


def test_captures_hikvision_multipart_stored_once_with_pictures(
    client: TestClient, tmp_path: Path
) -> None:
    """An ISAPI multipart push is stored with both pictures; its repeat is stored once (200)."""
    first = _post_hik(client, hik_multipart())
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["plate"] == "苏A8HK52" and body["plate_color"] == "blue"
    assert body["place"] == "segment:R1" and body["ga_plate_type"] == "02"
    assert hashlib.sha256(JPEG_PLATE).hexdigest() in body["pictures"]
    again = _post_hik(client, hik_multipart())
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["capture_id"] == body["capture_id"]
    assert _count(client, t.captures) == 1 and _count(client, t.pictures) == 2
    picture = client.get(
        f"/api/v1/pictures/{hashlib.sha256(JPEG_PLATE).hexdigest()}", headers=_auth(client, "olga")
    )
    assert picture.status_code == 200 and picture.content == JPEG_PLATE
    assert picture.headers["content-type"] == "image/jpeg"
    listed = client.get("/api/v1/captures", headers=_auth(client, "olga")).json()
    assert listed[0]["plate"] == "苏A8HK52" and len(listed[0]["pictures"]) == 2


def test_captures_hikvision_xml_alone(client: TestClient) -> None:
    """The XML-only push (no pictures) is a capture too."""
    response = _post_hik(client, anpr_xml(uuid="u-2"), "application/xml")
    assert response.status_code == 201 and response.json()["pictures"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        pytest.param(BILLION_LAUGHS, "text/xml", "refused XML", id="entity-expansion"),
        pytest.param(XXE, "text/xml", "refused XML", id="external-entity"),
        pytest.param(anpr_xml()[:-40], "text/xml", "malformed XML", id="truncated"),
        pytest.param(anpr_xml(event_type="VMD"), "text/xml", "not ANPR", id="wrong-event-type"),
        pytest.param(hik_multipart(BILLION_LAUGHS), MP_TYPE, "refused", id="multipart-bomb"),
        pytest.param(hik_multipart()[:-30], MP_TYPE, "truncated", id="multipart-truncated"),
        pytest.param(b"\x00\xff" * 10, "application/octet-stream", "neither", id="binary"),
    ],
)
def test_captures_hostile_xml_refused_and_nothing_stored(
    client: TestClient, tmp_path: Path, body: bytes, content_type: str, words: str
) -> None:
    """Each hostile or malformed body gets 422 naming the reason; no row, no picture file."""
    response = _post_hik(client, body, content_type)
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"] and response.json()["field"] == "body"
    assert _count(client, t.captures) == 0 and _count(client, t.pictures) == 0
    assert (
        not list((tmp_path / "pictures").rglob("*")) if (tmp_path / "pictures").exists() else True
    )


@pytest.mark.parametrize(
    ("token", "path", "status", "words"),
    [
        pytest.param(
            "C9", "/api/v1/cameras/hikvision", 403, "not in the site", id="unknown-camera"
        ),
        pytest.param("C2", "/api/v1/cameras/hikvision", 422, "dahua camera", id="wrong-kind"),
        pytest.param("olga", "/api/v1/cameras/hikvision", 403, "needs camera", id="not-a-camera"),
        pytest.param(None, "/api/v1/cameras/hikvision", 401, "bearer", id="no-token"),
    ],
)
def test_captures_camera_tokens(
    client: TestClient, token: str | None, path: str, status: int, words: str
) -> None:
    """Only a camera token named after a site camera of the right kind may push."""
    headers = {"Content-Type": MP_TYPE, **(_auth(client, token) if token else {})}
    response = client.post(path, content=hik_multipart(), headers=headers)
    assert response.status_code == status and words in response.json()["detail"]
    assert _count(client, t.captures) == 0


def test_captures_dahua_and_parkgrid(client: TestClient) -> None:
    """Dahua JSON and parkgrid JSON (picture by reference after an upload) are stored."""
    response = client.post(
        "/api/v1/cameras/dahua",
        content=json.dumps(dahua_event()).encode(),
        headers={**_auth(client, "C2"), "Content-Type": "application/json"},
    )
    assert response.status_code == 201 and response.json()["place"] == "segment:R1"
    upload = client.post(
        "/api/v1/pictures",
        content=JPEG_PLATE,
        headers={**_auth(client, "C3"), "Content-Type": "image/jpeg"},
    )
    assert upload.status_code == 201
    doc = {
        "camera_id": "C3",
        "event_id": "p-1",
        "time": "2025-03-01T08:00:00Z",
        "plate": "苏B12345",
        "plate_color": "blue",
        "vehicle_class": "car",
        "lot_id": "P2",
        "pictures": [{"name": "scene.jpg", "kind": "scene", "sha256": upload.json()["sha256"]}],
    }
    stored = client.post("/api/v1/captures", json=doc, headers=_auth(client, "C3"))
    assert stored.status_code == 201 and stored.json()["place"] == "lot:P2"
    bad = client.post(
        "/api/v1/captures",
        json={**doc, "event_id": "p-2", "pictures": [{"name": "x.jpg", "sha256": "b" * 64}]},
        headers=_auth(client, "C3"),
    )
    assert bad.status_code == 422 and "not stored" in bad.json()["detail"]
    other = client.post(
        "/api/v1/captures", json={**doc, "camera_id": "C1"}, headers=_auth(client, "C3")
    )
    assert other.status_code == 422 and other.json()["field"] == "camera_id"
    with_part = multipart(
        [
            (
                "capture",
                "application/json",
                json.dumps(
                    {**doc, "event_id": "p-3", "pictures": [{"name": "p.jpg", "kind": "plate"}]}
                ).encode(),
            ),
            ("p.jpg", "image/jpeg", b"\xff\xd8other\xff\xd9"),
        ]
    )
    response = client.post(
        "/api/v1/captures",
        content=with_part,
        headers={**_auth(client, "C3"), "Content-Type": MP_TYPE},
    )
    assert response.status_code == 201 and len(response.json()["pictures"]) == 1


def test_captures_make_a_violation_reviewed_over_http(client: TestClient) -> None:
    """Three pushes over five minutes: a pending violation the ledger page can review."""
    for n, when in enumerate(("16:00:00", "16:02:30", "16:05:00")):
        xml = anpr_xml(uuid=f"stay-{n}", when=f"2025-03-01T{when}+08:00")
        assert _post_hik(client, hik_multipart(xml)).status_code == 201
    entries = client.get("/api/v1/ledger", headers=_auth(client, "olga")).json()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["status"] == "pending_review" and entry["actions"] == ["confirm", "void"]
    assert entry["evidence"]["captures"][0]["pictures"][0]["url"].startswith("/api/v1/pictures/")
    seq = entry["seq"]
    confirmed = client.post(
        f"/api/v1/ledger/{seq}/actions", json={"action": "confirm"}, headers=_auth(client, "olga")
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    again = client.post(
        f"/api/v1/ledger/{seq}/actions", json={"action": "confirm"}, headers=_auth(client, "olga")
    )
    assert again.status_code == 409
    assert client.get("/api/v1/ledger/verify", headers=_auth(client, "olga")).status_code == 403
    verify = client.get("/api/v1/ledger/verify", headers=_auth(client, "ada")).json()
    assert verify["ok"] is True and verify["entries"] == 2
    export = client.get(
        "/api/v1/ledger/export",
        params={"start": "2025-03-01", "end": "2099-01-01", "format": "xlsx"},
        headers=_auth(client, "olga"),
    )
    assert export.status_code == 200 and export.content[:2] == b"PK"
    assert client.get("/api/v1/ledger/999", headers=_auth(client, "olga")).status_code == 404
    assert client.get("/api/v1/ledger/x", headers=_auth(client, "olga")).status_code == 422


def test_captures_body_limit_allows_pictures_but_not_more(client: TestClient) -> None:
    """Camera bodies may exceed the general 4 KiB limit (pictures), other bodies may not."""
    big = multipart(
        [
            ("anpr.xml", "text/xml", anpr_xml(uuid="big")),
            ("licensePlatePicture.jpg", "image/jpeg", b"\xff" * 100_000),
        ]
    )
    assert _post_hik(client, big).status_code == 201
    huge = client.post(
        "/api/v1/ledger/1/actions",
        content=b"x" * 10_000,
        headers={**_auth(client, "olga"), "Content-Type": "application/json"},
    )
    assert huge.status_code == 413


def test_verify_ledger_cli_names_the_altered_entry(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`parkgrid central verify-ledger` exits 0 on a sound chain and 1 naming a changed entry."""
    from parkgrid.cli import main

    for n, when in enumerate(("16:00:00", "16:02:30", "16:05:00")):
        _post_hik(client, hik_multipart(anpr_xml(uuid=f"cli-{n}", when=f"2025-03-01T{when}+08:00")))
    argv = ["central", "verify-ledger", "--database-url", f"sqlite:///{tmp_path / 'central.db'}"]
    assert main(argv) == 0
    assert "ledger ok: 1 entries" in capsys.readouterr().out
    with client.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(t.ledger.update().values(fine_cny=1))
    assert main(argv) == 1
    assert "broken at entry 1" in capsys.readouterr().err
