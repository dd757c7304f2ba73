"""Central's HTTP API against hostile clients: who may do what, tokens that end, no leaks.

tests/central/test_api.py already holds: one endpoint without a token (401), a bad token
(401), a viewer refused alert actions and user creation (403), a camera token refused the
bay list (403), logout revoking its token, and five wrong passwords for one user name then
429 with Retry-After. This module adds every protected operation without a token, a viewer
confirming a real violation, a camera token on every other write, expiry by the app's own
token clock, back-off per client address across user names, and no secret in any log line
of a real ``parkgrid central serve`` (login, add-user, add-token, provision-box, a camera
push, a box connecting with its password). Each check is one row of docs/reliability.md.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user, issue_token
from central.db.engine import make_engine
from central.provision import password_line, upsert_password
from central.settings import CentralSettings
from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker
from tests.central.helpers import SITE_FILE, birth, wait_for
from tests.faults.rig import ROOT, SITE_ID, Central, plan_boxes, record, write_site
from tests.firmware_protocols.test_cameras import MP_TYPE, anpr_xml, hik_multipart
from tests.security.test_broker import AS_ROOT, connect

# Capture intake: the only writes a camera token may make.
CAMERA_WRITES = {
    ("POST", "/api/v1/captures"),
    ("POST", "/api/v1/cameras/hikvision"),
    ("POST", "/api/v1/cameras/dahua"),
    ("POST", "/api/v1/cameras/dahua/NotificationInfo/TollgateInfo"),
    ("POST", "/api/v1/cameras/dahua/NotificationInfo/KeepAlive"),
    ("POST", "/api/v1/pictures"),
}
# Any token may revoke itself (it gives up its own access, touches nothing else).
SELF = {("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/me")}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app on SQLite, no MQTT; users vic (viewer), olga (operator); camera C1, box token."""
    tmp = tmp_path_factory.mktemp("api-auth")
    db_url = f"sqlite:///{tmp / 'central.db'}"
    settings = CentralSettings(
        site_file=SITE_FILE, database_url=db_url, ingest=False, pictures_dir=tmp / "pictures"
    )
    with TestClient(create_app(settings)) as client:
        engine = make_engine(db_url)
        for name, role in (("vic", Role.VIEWER), ("olga", Role.OPERATOR)):
            add_user(engine, username=name, password=f"{name}-password", role=role, actor="t")
        tokens = {
            name: issue_token(engine, name=name, role=role, ttl_s=3600, actor="t")[0]
            for name, role in (("C1", Role.CAMERA), ("box-p1", Role.BOX))
        }
        client.tokens = tokens  # type: ignore[attr-defined]
        yield client
        engine.dispose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: TestClient, name: str) -> str:
    response = client.post(
        "/api/v1/auth/login", data={"username": name, "password": f"{name}-password"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _operations(client: TestClient) -> list[tuple[str, str, bool]]:
    """(method, path with ids filled, needs a token) for every operation in the document."""
    doc = client.get("/openapi.json").json()
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            filled = re.sub(r"\{[^}]+\}", "1", path)
            out.append((method.upper(), filled, bool(op.get("security"))))
    return out


def test_api_auth_every_protected_operation_needs_a_token(api: TestClient) -> None:
    """Every operation the document marks as secured is 401 without a token or with junk."""
    tried = refused = 0
    for method, path, secured in _operations(api):
        if not secured:
            continue
        for headers in ({}, {"Authorization": "Basic dmljOnZpYy1wYXNzd29yZA=="}, _bearer("x")):
            tried += 1
            response = api.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            refused += 1
    record(
        "security",
        "API: no or junk token",
        {
            "cases": tried,
            "refused": refused,
            "how": "401 with WWW-Authenticate: Bearer on every secured operation (no token, "
            "a Basic header, an unknown bearer token)",
        },
    )


def test_api_auth_viewer_cannot_confirm_a_violation(api: TestClient) -> None:
    """A real pending violation: a viewer's confirm and void are 403 and change nothing."""
    camera = {**_bearer(api.tokens["C1"]), "Content-Type": MP_TYPE}  # type: ignore[attr-defined]
    cst = dt.timezone(dt.timedelta(hours=8))
    for n, ago in enumerate((6.0, 3.5, 1.0)):  # a camera with a right clock (else: held)
        when = dt.datetime.now(cst) - dt.timedelta(minutes=ago)
        xml = anpr_xml(uuid=f"v-{n}", when=when.isoformat(timespec="seconds"))
        pushed = api.post("/api/v1/cameras/hikvision", content=hik_multipart(xml), headers=camera)
        assert pushed.status_code == 201, pushed.text
    viewer, operator = _bearer(_login(api, "vic")), _bearer(_login(api, "olga"))
    entries = api.get("/api/v1/ledger", headers=viewer).json()
    assert len(entries) == 1 and entries[0]["status"] == "pending_review"
    seq = entries[0]["seq"]
    for action in ("confirm", "void"):
        response = api.post(
            f"/api/v1/ledger/{seq}/actions",
            json={"action": action, "reason": "looks fine"},
            headers=viewer,
        )
        assert response.status_code == 403 and "needs operator" in response.json()["detail"]
    assert api.get(f"/api/v1/ledger/{seq}", headers=viewer).json()["status"] == "pending_review"
    confirmed = api.post(
        f"/api/v1/ledger/{seq}/actions", json={"action": "confirm"}, headers=operator
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    record(
        "security",
        "API: viewer confirms a violation",
        {
            "cases": 2,
            "refused": 2,
            "how": "403 'needs operator' for confirm and void; the entry stays pending until "
            "an operator confirms it",
        },
    )


BOX_READS = {("GET", "/api/v1/releases"), ("GET", "/api/v1/releases/1/bundle")}


def test_api_auth_camera_token_only_posts_captures(api: TestClient) -> None:
    """A camera token is 403 on every operation but capture intake (and its own /me, logout)."""
    camera = _bearer(api.tokens["C1"])  # type: ignore[attr-defined]
    box = _bearer(api.tokens["box-p1"])  # type: ignore[attr-defined]
    tried = refused = 0
    for method, path, secured in _operations(api):
        if not secured or (method, path) in SELF | CAMERA_WRITES:
            continue
        if path == "/api/v1/stream":
            continue  # a 200 here would never end; Viewer-only like the rest, checked below
        for who in (camera, box):
            if who is box and (method, path) in BOX_READS:
                continue  # checked below: a box of the town fetches its release bundles
            tried += 1
            response = api.request(method, path, headers=who, json={})
            assert response.status_code == 403, (method, path, response.text)
            refused += 1
    for who in (camera, box):
        tried += 1
        with api.stream("GET", "/api/v1/stream", headers=who) as response:
            assert response.status_code == 403
            refused += 1
    assert api.get("/api/v1/releases", headers=box).status_code == 200
    assert api.get("/api/v1/releases/1/bundle", headers=box).status_code == 404  # none stored
    # The box token is not a camera either: it may not push captures.
    response = api.post(
        "/api/v1/cameras/hikvision",
        content=hik_multipart(),
        headers={**box, "Content-Type": MP_TYPE},
    )
    assert response.status_code == 403
    record(
        "security",
        "API: camera and box tokens",
        {
            "cases": tried + 1,
            "refused": refused + 1,
            "how": "403 on every operation but capture intake for a camera token (and on "
            "everything for a box token, captures included); only /auth/me and logout answer",
        },
    )


def test_api_auth_tokens_expire(api: TestClient) -> None:
    """A login token works until its expiry by the app's token clock, then is 401 'expired'."""
    central = api.app.state.central  # type: ignore[attr-defined]
    token = _login(api, "vic")
    assert api.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 200
    machine, machine_expires = issue_token(
        central.engine, name="C1", role=Role.CAMERA, ttl_s=86400, actor="t"
    )
    real = central.tokens.clock
    try:
        central.tokens.clock = lambda: real() + central.settings.token_ttl_s - 60
        assert api.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 200
        central.tokens.clock = lambda: real() + central.settings.token_ttl_s + 1
        response = api.get("/api/v1/auth/me", headers=_bearer(token))
        assert response.status_code == 401 and "expired" in response.json()["detail"]
        assert api.get("/api/v1/auth/me", headers=_bearer(machine)).status_code == 200
        central.tokens.clock = lambda: machine_expires + 1
        response = api.get("/api/v1/auth/me", headers=_bearer(machine))
        assert response.status_code == 401 and "expired" in response.json()["detail"]
    finally:
        central.tokens.clock = real
    assert api.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 200
    record(
        "security",
        "API: token expiry",
        {
            "cases": 2,
            "refused": 2,
            "how": "a login token (token_ttl_s) and a machine token (ttl_days) are 401 "
            "'token expired' once the app's token clock passes their expiry",
        },
    )


def test_api_auth_failed_logins_slowed_per_client_address(api: TestClient) -> None:
    """Wrong passwords spread over many user names from one address still bring 429."""
    central = api.app.state.central  # type: ignore[attr-defined]
    limit = central.throttle.max_failures
    for n in range(limit):
        response = api.post(
            "/api/v1/auth/login", data={"username": f"guess{n}", "password": "password1"}
        )
        assert response.status_code == 401
    response = api.post("/api/v1/auth/login", data={"username": "olga", "password": "nope"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    # Even the right password waits out the back-off: a guesser learns nothing meanwhile.
    response = api.post(
        "/api/v1/auth/login", data={"username": "olga", "password": "olga-password"}
    )
    assert response.status_code == 429
    time.sleep(int(response.headers["Retry-After"]) + 0.2)
    assert (
        api.post(
            "/api/v1/auth/login", data={"username": "olga", "password": "olga-password"}
        ).status_code
        == 200
    )
    record(
        "security",
        "API: login back-off",
        {
            "cases": 2,
            "refused": 2,
            "how": f"after {limit} failures (one user name, test_api; or many names from one "
            "address, here) 429 with Retry-After, the right password included, until it passes",
        },
    )


# --- no secret in a log line: a real `parkgrid central serve` ----------------------------


def _run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stderr
    return ran


def _http(url: str, *, data: dict[str, str] | bytes | None = None, headers: Any = None) -> Any:
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_api_auth_no_secret_in_any_log_line(tmp_path: Path) -> None:
    """Passwords and tokens never appear in central's log (debug level) or the CLI's stderr."""
    plans = plan_boxes(1, 2)
    site = write_site(tmp_path / "site.toml", plans)
    with site.open("a") as f:
        f.write('\n[segments.R1]\nname = "Main road"\nroad = "Main road"\n')
        f.write('\n[cameras.C1]\nkind = "hikvision"\nsegment = "R1"\n')
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    box = plans[0].box_id
    prov = _run(
        ["central", "provision-box", box, "--site", str(site), "--out", str(tmp_path / box),
         "--password-file", str(passwd), "--acl-file", str(acl)]
    )  # fmt: skip
    secrets = {"box password": (tmp_path / box / "mqtt-password").read_text().strip()}
    secrets["central mqtt password"] = "central-mqtt-secret-7f3a"
    upsert_password(passwd, line=password_line("central", secrets["central mqtt password"]))
    stderr = [prov.stderr]
    with MosquittoBroker(
        workdir=tmp_path / "broker",
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT],
    ) as broker:
        central = Central(workdir=tmp_path, site_file=site, mqtt_url=broker.url)
        argv = central.proc.argv
        argv[argv.index("--log-level") + 1] = "debug"
        central.proc.env.update(
            PARKGRID_MQTT_USERNAME="central",
            PARKGRID_MQTT_PASSWORD=secrets["central mqtt password"],
            PARKGRID_PICTURES_DIR=str(tmp_path / "pictures"),
        )
        db = ["--database-url", f"sqlite:///{central.db_path}"]
        central.start()
        try:
            secrets["user password"] = "ada-password-c0ffee"
            stderr.append(
                _run(
                    ["central", "add-user", "ada", "--role", "admin", "--password-stdin", *db],
                    stdin=secrets["user password"] + "\n",
                ).stderr
            )
            token_run = _run(["central", "add-token", "C1", "--role", "camera", *db])
            stderr.append(token_run.stderr)
            secrets["camera token"] = token_run.stdout.strip().splitlines()[-1]
            secrets["wrong password"] = "ada-wrong-guess-9d2e"
            status, _ = _http(
                f"{central.url}/api/v1/auth/login",
                data={"username": "ada", "password": secrets["wrong password"]},
            )
            assert status == 401
            status, body = _http(
                f"{central.url}/api/v1/auth/login",
                data={"username": "ada", "password": secrets["user password"]},
            )
            assert status == 200
            secrets["login token"] = json.loads(body)["access_token"]
            admin = _bearer(secrets["login token"])
            status, body = _http(
                f"{central.url}/api/v1/auth/tokens",
                data=json.dumps({"name": "C9", "role": "camera"}).encode(),
                headers={**admin, "Content-Type": "application/json"},
            )
            assert status == 201
            secrets["API-issued token"] = json.loads(body)["access_token"]
            # The EventSource path: a token in the query string (access logs print URLs).
            status, _ = _http(f"{central.url}/api/v1/auth/me?access_token={secrets['login token']}")
            assert status == 200
            status, _ = _http(
                f"{central.url}/api/v1/cameras/hikvision",
                data=hik_multipart(),
                headers={**_bearer(secrets["camera token"]), "Content-Type": MP_TYPE},
            )
            assert status == 201
            client, ok = connect(broker.port, box, secrets["box password"])
            assert ok, "the box's own credentials are accepted"
            topics = Topics(SITE_ID, box)
            client.publish(topics.status, encode_payload(birth(box)), qos=1, retain=True)
            wait_for(
                lambda: b'"online"' in _http(f"{central.url}/api/v1/boxes/{box}", headers=admin)[1],
                what="central sees the box online",
            )
            client.disconnect()
            client.loop_stop()
        finally:
            central.stop()
    log = central.proc.log.read_text(errors="replace")
    assert "POST /api/v1/auth/login" in log, "the access log is on: the check is not vacuous"
    assert "/api/v1/auth/me?access_token=[redacted]" in log
    lines = [*log.splitlines(), *"\n".join(stderr).splitlines()]
    leaks = [
        f"{name} in: {line[:120]}"
        for name, secret in secrets.items()
        for line in lines
        if secret in line or urllib.parse.quote(secret) in line
    ]
    assert not leaks, leaks
    record(
        "security",
        "API: no secret in a log line",
        {
            "cases": len(secrets),
            "refused": len(secrets),
            "how": f"{len(lines)} lines of central's debug log and the CLI's stderr searched for "
            f"{', '.join(secrets)}: none found",
        },
    )
