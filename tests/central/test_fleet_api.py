"""The fleet API: anyone logged in reads each box's configuration state; only an admin pushes,
and never through the operators' command endpoint. (The push end to end, with a real box,
broker and central: tests/edge/test_config_push.py.)"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.central.test_api import _login, client  # noqa: F401 (the fixture)


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
