"""Security headers on every answer central gives: pages, assets, API, errors, refusals (issue 14).

One ``SecurityHeaders`` middleware (``central/http_headers.py``) adds them; these tests read
them off real answers of the app, including answers that never reach a route (a body over
the limit, an unknown path, a refused token).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.settings import CentralSettings
from tests.central.helpers import SITE_FILE
from tests.faults.rig import record

PASSWORD = "headers-test-pw"
API_POLICY = {"default-src": "'none'", "frame-ancestors": "'none'", "sandbox": ""}
COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    work = tmp_path_factory.mktemp("headers")
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{work / 'c.db'}",
        ingest=False,
        max_body_bytes=4096,
    )
    with TestClient(create_app(settings)) as c:
        central = c.app.state.central  # type: ignore[attr-defined]
        add_user(central.engine, username="ops", password=PASSWORD, role=Role.ADMIN, actor="t")
        yield c


@pytest.fixture(scope="module")
def token(client: TestClient) -> str:
    r = client.post("/api/v1/auth/login", data={"username": "ops", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _csp(response: httpx.Response) -> dict[str, str]:
    parts = (
        p.strip().split(None, 1) for p in response.headers["content-security-policy"].split(";")
    )
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts if p}


def _common(response: httpx.Response) -> None:
    for name, value in COMMON.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "camera=()" in response.headers["permissions-policy"]


def test_headers_on_pages_and_assets(client: TestClient) -> None:
    """Pages: the strict page policy and no framing; assets: nosniff and a policy too."""
    checked = 0
    for path in ("/dashboard/", "/dashboard/login", "/dashboard/lot?id=P1"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        _common(r)
        csp = _csp(r)
        assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        checked += 1
    for path in ("/dashboard/static/pg.js", "/dashboard/static/pg.css", "/dashboard/page/lot.js"):
        r = client.get(path)
        assert r.status_code == 200
        _common(r)
        assert _csp(r) == API_POLICY
        checked += 1
    record(
        "hostile",
        "clickjacking and sniffing (headers)",
        {
            "attack": "frame a dashboard page or make a browser sniff an asset as HTML",
            "tried": checked,
            "refused": checked,
            "notes": "X-Frame-Options DENY, frame-ancestors 'none', nosniff on every answer",
        },
    )


def test_headers_on_api_answers_errors_and_refusals(client: TestClient, token: str) -> None:
    """Open data, errors, a refused token, an unknown path, a body over the limit: all have them."""
    answers = [
        client.get("/api/v1/lots"),
        client.get("/api/v1/alerts"),  # 401
        client.get("/api/v1/alerts", headers={"Authorization": "Bearer nonsense"}),  # 401
        client.get("/api/v1/nothing"),  # 404
        client.get("/dashboard/nothing"),  # 404 as JSON
        client.post("/api/v1/auth/login", content=b"x" * 10_000),  # 413 from BodyLimit
        client.get("/openapi.json"),
    ]
    assert [r.status_code for r in answers] == [200, 401, 401, 404, 404, 413, 200]
    for r in answers:
        _common(r)
        assert _csp(r) == API_POLICY


def test_authenticated_answers_are_not_stored(client: TestClient, token: str) -> None:
    """No browser or proxy keeps what needed a token, however the token was sent."""
    bearer = {"Authorization": f"Bearer {token}"}
    stored = [
        client.get("/api/v1/alerts", headers=bearer),
        client.get(f"/api/v1/alerts?access_token={token}"),
        client.get(f"/api/v1/alerts?access%5Ftoken={token}"),
        client.get(f"/api/v1/alerts?%61ccess_token={token}"),
        client.get("/api/v1/auth/me", headers=bearer),
        client.post("/api/v1/auth/login", data={"username": "ops", "password": PASSWORD}),
        client.post("/api/v1/auth/login", data={"username": "ops", "password": "wrong-pw-1"}),
    ]
    for r in stored:
        assert r.status_code in (200, 401), r.text
        assert r.headers.get("cache-control") == "no-store", r.request.url
    # Open data with no token may be cached as the route says.
    assert client.get("/api/v1/lots").headers.get("cache-control") != "no-store"
    record(
        "hostile",
        "authenticated answers left in a shared cache",
        {
            "attack": "read a logged-in answer (or a login's token) back from a browser or "
            "proxy cache on a shared office PC",
            "tried": len(stored),
            "refused": len(stored),
            "notes": "Cache-Control: no-store for a token in the header or the query "
            "(any spelling of its name) and under /api/v1/auth/",
        },
    )


def test_api_docs_page_has_its_own_policy_without_inline_script(client: TestClient) -> None:
    """/docs loads Swagger UI from its CDN; the policy names its one inline script by hash."""
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    _common(r)
    csp = _csp(r)
    assert "unsafe-inline" not in csp["script-src"]
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert csp["script-src"].split() == ["https://cdn.jsdelivr.net", f"'sha256-{digest}'"]
    assert csp["frame-ancestors"] == "'none'"


def test_headers_module_is_the_one_place() -> None:
    """No route sets its own framing or sniffing header: one middleware owns them."""
    root = Path(__file__).resolve().parents[2] / "central"
    owners = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if re.search(r"X-Frame-Options|X-Content-Type-Options", p.read_text())
    ]
    assert owners == ["http_headers.py"]
