"""A leaked machine token (or session) can be found and revoked by an admin, at once.

A camera token taken from a camera's configuration posts captures, and captures make
fines; before this, only the token itself could end it (logout). ``GET /api/v1/auth/tokens``
lists every live token (never the token, only an id from its hash) and ``DELETE
/api/v1/auth/tokens/{id}`` revokes one: the next request with it is 401, without waiting
for the token cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.settings import CentralSettings
from tests.central.helpers import SITE_FILE
from tests.faults.rig import record


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{tmp_path / 'central.db'}",
        ingest=False,
        pictures_dir=tmp_path / "pictures",
    )
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.central.engine  # type: ignore[attr-defined]
        for name, role in (("ada", Role.ADMIN), ("olga", Role.OPERATOR)):
            add_user(engine, username=name, password=f"{name}-password", role=role, actor="t")
        yield client


def _bearer(api: TestClient, user: str) -> dict[str, str]:
    r = api.post("/api/v1/auth/login", data={"username": user, "password": f"{user}-password"})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_hostile_leaked_camera_token_is_revoked_by_an_admin(api: TestClient) -> None:
    admin = _bearer(api, "ada")
    issued = api.post("/api/v1/auth/tokens", json={"name": "C1", "role": "camera"}, headers=admin)
    assert issued.status_code == 201
    camera = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert api.get("/api/v1/auth/me", headers=camera).status_code == 200  # cached from here
    operator = _bearer(api, "olga")
    assert api.get("/api/v1/auth/tokens", headers=operator).status_code == 403
    listed = api.get("/api/v1/auth/tokens", headers=admin)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert issued.json()["access_token"] not in listed.text  # ids only, never a token
    c1 = [r for r in rows if r["name"] == "C1"]
    assert len(c1) == 1 and c1[0]["role"] == "camera" and c1[0]["user"] is None
    assert {r["user"] for r in rows if r["user"]} == {"ada", "olga"}  # live sessions too
    assert api.delete(f"/api/v1/auth/tokens/{c1[0]['id']}", headers=operator).status_code == 403
    assert api.delete(f"/api/v1/auth/tokens/{c1[0]['id']}", headers=admin).status_code == 204
    refused = api.get("/api/v1/auth/me", headers=camera)
    assert refused.status_code == 401, refused.text
    assert api.delete(f"/api/v1/auth/tokens/{c1[0]['id']}", headers=admin).status_code == 404
    assert api.delete("/api/v1/auth/tokens/not-an-id", headers=admin).status_code == 422
    record(
        "hostile",
        "leaked camera token",
        {
            "attack": "keep using a camera token taken from a camera; an operator lists or "
            "revokes tokens",
            "tried": 3,
            "refused": 3,
            "notes": "an admin found it in GET /api/v1/auth/tokens (ids, never tokens) and "
            "revoked it: 401 on its next request, not after the cache; the operator 403 twice",
        },
    )
