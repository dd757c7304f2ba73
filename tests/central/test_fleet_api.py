"""The fleet API: anyone logged in reads each box's configuration state; only an admin pushes,
and never through the operators' command endpoint. (The push end to end, with a real box,
broker and central: tests/edge/test_config_push.py.)"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.central.test_api import _login, client  # noqa: F401 (the fixture)
from tests.faults.rig import record


def test_fleet_lists_every_box_and_an_old_box_is_pending_unreported(client: TestClient) -> None:  # noqa: F811
    rows = client.get("/api/v1/fleet", headers=_login(client, "vic")).json()
    assert [row["box_id"] for row in rows] == ["box-p1", "box-p2", "box-s1"]
    p1 = rows[0]
    assert p1["desired_hash"].startswith("sha256:") and len(p1["desired_hash"]) == 71
    # box-p1's birth has no site_config (a box older than configuration pushes): still valid
    assert (p1["state"], p1["reported_hash"]) == ("pending", None)
    assert p1["differs"] == ["not reported (the box has not said what it runs)"]


def test_only_an_admin_pushes_and_not_as_a_plain_command(client: TestClient) -> None:  # noqa: F811
    operator, admin = _login(client, "olga"), _login(client, "ada")
    push = {"box_id": "box-p1"}
    assert client.post("/api/v1/fleet/config/push", json=push, headers=operator).status_code == 403
    answer = client.post("/api/v1/fleet/config/push", json={}, headers=admin)
    assert answer.status_code == 422 and "give box_id or all=true" in answer.text
    unknown = client.post("/api/v1/fleet/config/push", json={"box_id": "box-x"}, headers=admin)
    assert unknown.status_code == 404
    # this app runs without its MQTT link: refused, nothing recorded as sent
    assert client.post("/api/v1/fleet/config/push", json=push, headers=admin).status_code == 503
    body = {
        "command": "config-push", "version": 1, "hash": "sha256:" + "0" * 64,
        "document": 'timezone = "Asia/Shanghai"\n',
    }  # fmt: skip
    sneaked = client.post("/api/v1/boxes/box-p1/commands", json={"body": body}, headers=operator)
    assert sneaked.status_code == 422 and "fleet config push" in sneaked.text


def test_a_cross_site_push_has_no_credential_to_ride_on(client: TestClient) -> None:  # noqa: F811
    """CSRF on the push: another site's page can make an admin's browser post a form (or
    text/plain JSON) to the push, but central's only credential is the bearer token the
    dashboard keeps in its own origin's storage and sends in a header. Logging in sets no
    cookie, a post without the header is 401 even from a client holding the login's
    answer, and no CORS header lets another origin read an answer or send the header."""
    admin = _login(client, "ada")
    assert not client.cookies, dict(client.cookies)  # nothing ambient for a browser to add
    evil = {"Origin": "https://evil.example", "Referer": "https://evil.example/x"}
    tried = [
        client.post("/api/v1/fleet/config/push", data={"box_id": "box-p1"}, headers=evil),
        client.post(
            "/api/v1/fleet/config/push",
            content=b'{"box_id": "box-p1"}',
            headers={**evil, "Content-Type": "text/plain"},
        ),
        client.post("/api/v1/fleet/config/push?all=true", headers=evil),
    ]
    assert [r.status_code for r in tried] == [401, 401, 401], [r.text for r in tried]
    preflight = client.options(
        "/api/v1/fleet/config/push",
        headers={**evil, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    answered = client.get("/api/v1/fleet", headers={**admin, **evil})
    for r in (preflight, answered):
        assert "access-control-allow-origin" not in r.headers, dict(r.headers)
    record(
        "hostile",
        "cross-site push of a configuration (CSRF)",
        {
            "attack": "another origin posts the fleet push as a form, as text/plain JSON and "
            "with ?all=true, with an admin logged in; and asks CORS for the header",
            "tried": len(tried) + 1,
            "refused": len(tried) + 1,
            "notes": "401 each (the bearer token is in a header, no cookie is ever set); no "
            "Access-Control-Allow-Origin on the preflight or on an answer",
        },
    )
