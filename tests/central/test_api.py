"""The HTTP API: public lots, auth and roles, alerts, bad input never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.db.engine import make_engine
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from firmware_protocols.uplink import AlertRaised, Event, Topics
from firmware_protocols.uplink.models import AlertType, Severity
from site_model.site import SiteIndex, load_site
from tests.central.helpers import BOOT, SITE, SITE_FILE, at, birth, event_msg, lot_state, raw

P1 = Topics(SITE, "box-p1")


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    """An app on SQLite without MQTT (the store suite covers PostgreSQL), three users."""
    db_url = sqlite_url
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=db_url,
        ingest=False,
        lots_cache_s=0,
        max_body_bytes=4096,
    )
    with TestClient(create_app(settings)) as client:
        engine = make_engine(db_url)
        for name, role in (("vic", Role.VIEWER), ("olga", Role.OPERATOR), ("ada", Role.ADMIN)):
            add_user(engine, username=name, password=f"{name}-password", role=role, actor="test")
        writer = IngestWriter(engine=engine, site=SiteIndex.of(load_site(SITE_FILE)))
        writer.process([raw(P1.status, birth("box-p1")), raw(P1.lot("P1"), lot_state())])
        client.app.state.writer = writer  # type: ignore[attr-defined]
        yield client
        engine.dispose()


def _login(client: TestClient, name: str) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/login", data={"username": name, "password": f"{name}-password"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_api_public_lots_need_no_login(client: TestClient) -> None:
    """GET /api/v1/lots lists every lot with its figures; an offline box's lot is stale."""
    body = client.get("/api/v1/lots").json()
    by_id = {lot["id"]: lot for lot in body["lots"]}
    assert by_id["P1"]["free"] == 7 and by_id["P1"]["stale"] is False
    assert by_id["P2"]["stale"] is True and by_id["P2"]["free"] == 0
    assert by_id["P2"]["status"] == "unknown"
    one = client.get("/api/v1/lots/P1").json()
    assert one["capacity"] == 10 and one["location"] == {"lat": 34.7961, "lon": 117.2632}


def test_api_ngsi_lots(client: TestClient) -> None:
    """The FIWARE view has OffStreetParking entities; a stale lot has no available count."""
    entities = {e["id"].rsplit(":", 1)[1]: e for e in client.get("/api/v1/ngsi/lots").json()}
    assert entities["P1"]["type"] == "OffStreetParking"
    assert entities["P1"]["availableSpotNumber"] == 7
    assert entities["P1"]["location"]["coordinates"] == [117.2632, 34.7961]
    assert entities["P2"]["availableSpotNumber"] is None
    assert entities["P2"]["status"] == ["unknown"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "words"),
    [
        pytest.param("get", "/api/v1/lots/P9", {}, 404, "no lot 'P9'", id="unknown-lot"),
        pytest.param("get", "/api/v1/lots/%00%ff", {}, 404, "no lot", id="odd-lot-id"),
        pytest.param("get", "/api/v1/lots/P1/bays", {}, 401, "bearer token", id="no-token"),
        pytest.param(
            "post",
            "/api/v1/auth/login",
            {"data": {"username": "x"}},
            422,
            "password",
            id="login-missing-field",
        ),
        pytest.param(
            "post",
            "/api/v1/auth/login",
            {"content": b"x" * 10_000, "headers": {"content-type": "text/plain"}},
            413,
            "over",
            id="body-too-large",
        ),
        pytest.param(
            "get",
            "/api/v1/lots/P1/bays",
            {"headers": {"Authorization": "Bearer nope"}},
            401,
            "unknown",
            id="bad-token",
        ),
    ],
)
def test_api_bad_input_gets_a_reason(
    client: TestClient,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    words: str,
) -> None:
    """Unknown ids, missing fields, big bodies and bad tokens get 4xx with a reason."""
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    assert words in response.text


def test_api_malformed_json_is_422_with_the_field(client: TestClient) -> None:
    """A body with a wrong field type is 422 and names the field."""
    headers = _login(client, "olga")
    response = client.post(
        "/api/v1/boxes/box-p1/commands", json={"body": {"command": "close-bay"}}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["field"].startswith("body")
    response = client.post(
        "/api/v1/boxes/box-p1/commands", json={"expires_in_s": "soon"}, headers=headers
    )
    assert response.status_code == 422
    assert "expires_in_s" in response.text


def test_api_roles_are_enforced(client: TestClient) -> None:
    """A viewer reads bays but may not acknowledge alerts or add users; an admin may."""
    viewer, admin = _login(client, "vic"), _login(client, "ada")
    bays = client.get("/api/v1/lots/P1/bays", headers=viewer)
    assert bays.status_code == 200 and len(bays.json()) == 10
    assert client.post("/api/v1/alerts/1/acknowledge", headers=viewer).status_code == 403
    new_user = {"username": "newbie", "password": "long enough", "role": "viewer"}
    assert client.post("/api/v1/users", json=new_user, headers=viewer).status_code == 403
    assert client.post("/api/v1/users", json=new_user, headers=admin).status_code == 201
    token = client.post(
        "/api/v1/auth/tokens", json={"name": "cam-1", "role": "camera"}, headers=admin
    ).json()["access_token"]
    camera = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=camera).json()["role"] == "camera"
    assert client.get("/api/v1/lots/P1/bays", headers=camera).status_code == 403


def test_api_logout_revokes_the_token(client: TestClient) -> None:
    """After logout the same token is refused."""
    headers = _login(client, "vic")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_api_failed_logins_are_slowed_down(client: TestClient) -> None:
    """After five wrong passwords the next attempt is refused with 429 and Retry-After."""
    for _ in range(5):
        response = client.post("/api/v1/auth/login", data={"username": "vic", "password": "no"})
        assert response.status_code == 401
    response = client.post(
        "/api/v1/auth/login", data={"username": "vic", "password": "vic-password"}
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1


def test_api_alert_acknowledge_and_resolve_are_audited(client: TestClient) -> None:
    """An operator acknowledges then resolves an alert; each action names who did it."""
    writer: IngestWriter = client.app.state.writer  # type: ignore[attr-defined]
    body = AlertRaised(
        alert_id="a-1",
        alert_type=AlertType.SIGN_DOWN,
        severity=Severity.WARNING,
        since=at(0),
        message="sign P1-entry does not answer",
        lot_id="P1",
    )
    writer.process(
        [
            event_msg(
                Event(
                    box_id="box-p1", boot_id=BOOT, seq=1, event_id=uuid.uuid4(), ts=at(1), body=body
                )
            )
        ]
    )
    headers = _login(client, "olga")
    alerts = client.get("/api/v1/alerts?state=raised", headers=headers).json()
    assert [a["alert_id"] for a in alerts] == ["a-1"]
    alert_id = alerts[0]["id"]
    acked = client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "on it"}, headers=headers
    ).json()
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == "user:olga"
    again = client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=headers)
    assert again.status_code == 409
    resolved = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=headers).json()
    assert resolved["state"] == "resolved" and resolved["resolved_by"] == "user:olga"
    assert client.get("/api/v1/alerts/99999999999999999999", headers=headers).status_code == 422


def test_api_commands_need_the_mqtt_link(client: TestClient) -> None:
    """Without an ingest link a valid command is 503 (not 500); an unknown box is 404."""
    headers = _login(client, "olga")
    response = client.post(
        "/api/v1/boxes/box-p1/commands", json={"body": {"command": "rebirth"}}, headers=headers
    )
    assert response.status_code == 503
    response = client.post(
        "/api/v1/boxes/box-zz/commands", json={"body": {"command": "rebirth"}}, headers=headers
    )
    assert response.status_code == 404


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, parsed by prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# The families central's /metrics has always exposed: (name, type, label names).
CENTRAL_METRICS = {
    ("parkgrid_central_messages_total", "counter", ("kind",)),
    ("parkgrid_central_events_stored_total", "counter", ()),
    ("parkgrid_central_events_duplicate_total", "counter", ()),
    ("parkgrid_central_events_refused_total", "counter", ("reason",)),
    ("parkgrid_central_quarantined_total", "counter", ()),
    ("parkgrid_central_ingest_batches_total", "counter", ()),
    ("parkgrid_central_ingest_batch_seconds_total", "counter", ()),
    ("parkgrid_central_ingest_errors_total", "counter", ()),
    ("parkgrid_central_ingest_store_full", "gauge", ()),
    ("parkgrid_central_ingest_store_full_batches_total", "counter", ()),
    ("parkgrid_central_ingest_lag_seconds", "gauge", ()),
    ("parkgrid_central_acks_published_total", "counter", ()),
    ("parkgrid_central_ingest_queue_depth", "gauge", ()),
    ("parkgrid_central_ingest_backlog_depth", "gauge", ()),
    ("parkgrid_central_ingest_backlog_total", "counter", ()),
    ("parkgrid_central_seq_gap_events", "gauge", ("box_id",)),
    ("parkgrid_central_broker_dropped_messages_total", "counter", ()),
    ("parkgrid_central_broker_dropped_per_minute", "gauge", ()),
    ("parkgrid_central_broker_stored_messages", "gauge", ()),
    ("parkgrid_central_broker_sys_reported", "gauge", ()),
    ("parkgrid_central_mqtt_connected", "gauge", ()),
    ("parkgrid_central_quarantine_rows", "gauge", ()),
    ("parkgrid_central_quarantine_bytes", "gauge", ()),
    ("parkgrid_central_quarantine_max_bytes", "gauge", ()),
    ("parkgrid_central_quarantine_dropped_total", "counter", ("reason",)),
    ("parkgrid_central_site_problems", "gauge", ()),
    ("parkgrid_central_box_online", "gauge", ("box_id",)),
    ("parkgrid_central_box_last_seen_timestamp_seconds", "gauge", ("box_id",)),
    ("parkgrid_central_stream_notices_total", "counter", ()),
    ("parkgrid_central_stream_frames_total", "counter", ()),
    ("parkgrid_central_stream_resyncs_total", "counter", ()),
    ("parkgrid_central_password_checks_total", "counter", ()),
    ("parkgrid_central_password_checks_busy_total", "counter", ()),
    ("parkgrid_central_password_checks_waiting", "gauge", ()),
    ("parkgrid_central_login_throttle_keys", "gauge", ()),
    ("parkgrid_central_uptime_seconds", "gauge", ()),
}


def test_api_metrics_keep_their_names_types_and_labels(client: TestClient) -> None:
    """/metrics parses as Prometheus text and exposes the same families, types and labels
    (box_last_seen appears once a box was heard; its label is checked when present)."""
    _login(client, "olga")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    found = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            found.add((name, kind))
    expected = {(name, kind) for name, kind, _ in CENTRAL_METRICS}
    seen_once = ("parkgrid_central_box_last_seen_timestamp_seconds", "gauge")
    assert found - {seen_once} == expected - {seen_once}
    labels = {name: names for name, _, names in CENTRAL_METRICS}
    for name, label_values in _samples(text):
        keys = tuple(key for key, _ in label_values)
        # Before any message, messages_total is one unlabelled 0.
        before_any = name == "parkgrid_central_messages_total" and keys == ()
        assert keys == labels[name] or before_any, name
    unlabelled = _samples(text)
    assert unlabelled["parkgrid_central_events_refused_total", (("reason", "seq_replayed"),)] == 0
    assert unlabelled["parkgrid_central_quarantine_max_bytes", ()] > 0


def test_api_operational_endpoints(client: TestClient) -> None:
    """healthz answers, metrics are Prometheus text, OpenAPI documents the lot model."""
    assert client.get("/healthz").json()["database"] is True
    samples = _samples(client.get("/metrics").text)
    assert samples["parkgrid_central_box_online", (("box_id", "box-p1"),)] == 1
    assert samples["parkgrid_central_quarantine_rows", ()] == 0
    schema = client.get("/openapi.json").json()
    assert "LotOut" in schema["components"]["schemas"]
    assert "/api/v1/stream" in schema["paths"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/lots/P1/history?step=1",
        "/api/v1/lots/P1/history?start=yesterday",
        "/api/v1/lots/P1/history?start=2025-03-01T00:00:00",
        "/api/v1/lots/P1/history?start=2025-03-02T00:00:00Z&end=2025-03-01T00:00:00Z",
        "/api/v1/lots/P1/history?start=2020-01-01T00:00:00Z&end=2025-03-01T00:00:00Z&step=60",
        "/api/v1/alerts?limit=0",
        "/api/v1/alerts?state=bogus",
        "/api/v1/quarantine?limit=-1",
    ],
)
def test_api_query_mistakes_are_422(client: TestClient, path: str) -> None:
    """Out-of-range or malformed query parameters are 422, never 500."""
    headers = _login(client, "olga")
    assert client.get(path, headers=headers).status_code == 422
