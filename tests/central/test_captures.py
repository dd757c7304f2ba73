"""Capture intake over HTTP: camera tokens, ISAPI/Dahua/parkgrid bodies, hostile input."""

from __future__ import annotations

import datetime as dt
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
from tests.firmware_protocols.camera_corpus import (
    JPEG_A,
    JPEG_B,
    JPEG_C,
    STREAM_TYPE,
    attach_stream,
    hik_pid_multipart,
    sample,
)
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


def _minutes_ago(minutes: float) -> str:
    """A camera time with a right clock (captures far from their receipt are held)."""
    cst = dt.timezone(dt.timedelta(hours=8))
    return (dt.datetime.now(cst) - dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")


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
    for n, ago in enumerate((6.0, 3.5, 1.0)):
        xml = anpr_xml(uuid=f"stay-{n}", when=_minutes_ago(ago))
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

    for n, ago in enumerate((6.0, 3.5, 1.0)):
        _post_hik(client, hik_multipart(anpr_xml(uuid=f"cli-{n}", when=_minutes_ago(ago))))
    argv = ["central", "verify-ledger", "--database-url", f"sqlite:///{tmp_path / 'central.db'}"]
    assert main(argv) == 0
    assert "ledger ok: 1 entries" in capsys.readouterr().out
    with client.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(t.ledger.update().values(fine_cny=1))
    assert main(argv) == 1
    assert "broken at entry 1" in capsys.readouterr().err


# --- issue 21: streams, clock skew, unmapped values ---------------------------------------------


def _post_dahua(client: TestClient, body: bytes, content_type: str, path: str = "dahua"):
    headers = {**_auth(client, "C2"), "Content-Type": content_type}
    return client.post(f"/api/v1/cameras/{path}", content=body, headers=headers)


def _recent_stream() -> bytes:
    """The corpus attach stream with its camera times moved to a minute ago (UTC+8 camera)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    wall = (now + dt.timedelta(hours=8)).replace(tzinfo=None)
    local_utc = int((wall - dt.datetime(1970, 1, 1)).total_seconds())
    body = attach_stream()
    body = body.replace(b'"RealUTC": 1706600095', f'"RealUTC": {int(now.timestamp())}'.encode())
    for old in (b"1706625310", b"1706625400"):
        body = body.replace(old, str(local_utc).encode())
    return body.replace(b"2024-01-30 14:35:10", wall.isoformat(sep=" ").encode())


def test_dahua_attach_stream_stores_one_capture_per_event_with_pictures(
    client: TestClient,
) -> None:
    """A Dahua camera streaming events and heartbeats with pictures over
    eventManager.cgi?action=attach: one capture per event, each with its own pictures."""
    response = _post_dahua(client, _recent_stream(), STREAM_TYPE)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["heartbeats"] == 4 and out["ignored"] == ["VideoMotion"] and out["refused"] == []
    assert [c["plate"] for c in out["captures"]] == ["浙A12345", "浙B54321", "浙A12345"]
    assert all(c["held"] is None for c in out["captures"]), out
    stored = client.get("/api/v1/captures", headers=_auth(client, "olga")).json()
    by_event = {row["event_id"]: row for row in stored}
    assert len(by_event) == 3
    sizes = sorted(len(row["pictures"]) for row in stored)
    assert sizes == [1, 1, 2]
    digests = {p["sha256"] for row in stored for p in row["pictures"]}
    assert digests == {
        hashlib.sha256(d).hexdigest() for d in (JPEG_A, JPEG_B, JPEG_C, JPEG_A + b"-3")
    }
    slag = by_event["TrafficJunction/175706653/516/Pulse"]
    assert slag["vehicle_class"] == "truck" and slag["plate_color"] == "yellow"
    # the same stream again: nothing new
    again = _post_dahua(client, _recent_stream(), STREAM_TYPE)
    assert again.status_code == 200 and all(c["duplicate"] for c in again.json()["captures"])


def test_dahua_itsapi_upload_and_keepalive(client: TestClient) -> None:
    doc = json.loads(sample("dahua-itsapi-tollgate.json"))
    wall = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)
    doc["Picture"]["SnapInfo"]["AccurateTime"] = wall.isoformat(sep=" ", timespec="milliseconds")
    body = json.dumps(doc).encode()
    response = _post_dahua(client, body, "application/json", "dahua/NotificationInfo/TollgateInfo")
    assert response.status_code == 201, response.text
    assert response.json()["plate"] == "浙A99999" and len(response.json()["pictures"]) == 2
    alive = _post_dahua(
        client,
        b'{"DeviceID":"8M049B2PAJF3085"}',
        "application/json",
        "dahua/NotificationInfo/KeepAlive",
    )
    assert alive.status_code == 200


def test_camera_clock_far_off_is_held_alerted_and_confirmed_by_a_person(
    client: TestClient,
) -> None:
    """A Chinese-firmware alert dated 2034: kept with both times, held, alert raised, no
    violation until a person confirms; then the rules read it."""
    xml = sample("hikvision-anpr-cn-clock-2034.xml")
    body, content_type = hik_pid_multipart(xml)
    response = _post_hik(client, body, content_type)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["held"] == "camera_clock" and out["clock_skew_s"] > 7 * 365 * 86400
    assert out["outcomes"][0]["outcome"] == "held: camera clock"
    assert client.get("/api/v1/ledger", headers=_auth(client, "olga")).json() == []
    alerts = client.get("/api/v1/alerts", headers=_auth(client, "olga")).json()
    clock_alerts = [a for a in alerts if a["alert_type"] == "camera_clock"]
    assert [a["box_id"] for a in clock_alerts] == ["camera:C1"]
    assert clock_alerts[0]["state"] == "raised"
    assert out["clock_alert"] == "raised"
    row = client.get("/api/v1/captures", headers=_auth(client, "olga")).json()[0]
    assert row["camera_time"].startswith("2034-08-11T07:02:36")
    path = f"/api/v1/captures/{out['capture_id']}/confirm-time"
    assert (
        client.post(path, json={"use": "received"}, headers=_auth(client, "C1")).status_code == 403
    )
    confirmed = client.post(
        path,
        json={"use": "received", "reason": "camera clock reset"},
        headers=_auth(client, "olga"),
    )
    assert confirmed.status_code == 200, confirmed.text
    outcomes = confirmed.json()["outcomes"]
    assert any(o.get("rule") == "truck_ban" and o["outcome"] == "violation" for o in outcomes)
    again = client.post(path, json={"use": "received"}, headers=_auth(client, "olga"))
    assert again.status_code == 409
    # the camera's next capture on time resolves the alert
    on_time = anpr_xml(uuid="on-time", when=_minutes_ago(0.5))
    assert _post_hik(client, hik_multipart(on_time)).status_code == 201
    alerts = client.get("/api/v1/alerts", headers=_auth(client, "olga")).json()
    assert [a["state"] for a in alerts if a["alert_type"] == "camera_clock"] == ["resolved"]


def test_unmapped_vehicle_type_is_counted_for_the_office(client: TestClient) -> None:
    for n in range(2):
        xml = anpr_xml(uuid=f"odd-{n}", vehicle="excavator", when=_minutes_ago(1))
        assert _post_hik(client, hik_multipart(xml)).status_code == 201
    counted = client.get("/api/v1/cameras/unmapped", headers=_auth(client, "olga")).json()
    assert counted == [
        {
            "camera_id": "C1",
            "source": "hikvision",
            "field": "vehicle_type",
            "value": "excavator",
            "count": 2,
            "last_seen": counted[0]["last_seen"],
        }
    ]


def test_camera_backlog_confirmed_at_once_oldest_first(client: TestClient) -> None:
    """A camera back from an outage uploads old captures: all held, one decision for all."""
    for n, minutes in enumerate((1800, 1797.5, 1795)):  # a stay of five minutes, 30 h ago
        xml = anpr_xml(uuid=f"backlog-{n}", when=_minutes_ago(minutes))
        assert _post_hik(client, hik_multipart(xml)).json()["held"] == "camera_clock"
    held = client.get("/api/v1/captures/held", headers=_auth(client, "olga")).json()
    assert [h["camera_id"] for h in held] == ["C1", "C1", "C1"]
    assert all(h["clock_skew_s"] < -27 * 3600 for h in held)
    path = "/api/v1/cameras/C1/confirm-held"
    assert client.post(path, json={"use": "camera"}, headers=_auth(client, "C1")).status_code == 403
    assert (
        client.post(path, json={"use": "sometime"}, headers=_auth(client, "olga")).status_code
        == 422
    )
    done = client.post(
        path, json={"use": "camera", "reason": "outage"}, headers=_auth(client, "olga")
    )
    assert done.status_code == 200, done.text
    confirmed = done.json()["confirmed"]
    assert [c["captured_at"] for c in confirmed] == sorted(c["captured_at"] for c in confirmed)
    assert client.get("/api/v1/captures/held", headers=_auth(client, "olga")).json() == []
    # three captures over five minutes on a capture segment: a no-parking violation
    rules = {o.get("rule") for c in confirmed for o in c["outcomes"]}
    assert "no_parking" in rules, confirmed
    unknown = client.post(
        "/api/v1/cameras/C404/confirm-held", json={"use": "camera"}, headers=_auth(client, "olga")
    )
    assert unknown.status_code == 403
