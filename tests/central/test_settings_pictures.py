"""``CentralSettings.pictures_dir``: where the evidence pictures go, and that the app uses it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.auth.models import Role
from central.auth.service import issue_token
from central.db.engine import make_engine
from central.settings import CentralSettings
from tests.central.helpers import SITE_FILE


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        pytest.param("sqlite:////srv/parkgrid/central.db", "/srv/parkgrid/pictures", id="sqlite"),
        pytest.param(
            "postgresql+psycopg://pg@db/parkgrid", str(Path.cwd() / "parkgrid-pictures"), id="pg"
        ),
        pytest.param("sqlite://", str(Path.cwd() / "parkgrid-pictures"), id="sqlite-memory"),
    ],
)
def test_settings_pictures_dir_default_follows_the_database(
    monkeypatch: pytest.MonkeyPatch, database_url: str, expected: str
) -> None:
    """Without PARKGRID_PICTURES_DIR: beside a SQLite file, else ./parkgrid-pictures."""
    monkeypatch.delenv("PARKGRID_PICTURES_DIR", raising=False)
    settings = CentralSettings(site_file=SITE_FILE, database_url=database_url)
    assert settings.pictures_dir == Path(expected)


def test_settings_pictures_dir_from_the_environment_is_where_pictures_land(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PARKGRID_PICTURES_DIR wins over the default, and an uploaded picture is stored there."""
    target = tmp_path / "evidence"
    monkeypatch.setenv("PARKGRID_PICTURES_DIR", str(target))
    db_url = f"sqlite:///{tmp_path / 'db' / 'central.db'}"
    (tmp_path / "db").mkdir()
    settings = CentralSettings(site_file=SITE_FILE, database_url=db_url, ingest=False)
    assert settings.pictures_dir == target
    data = b"\xff\xd8\xff\xe0 a picture \xff\xd9"
    digest = hashlib.sha256(data).hexdigest()
    with TestClient(create_app(settings)) as client:
        token, _ = issue_token(
            make_engine(db_url), name="C1", role=Role.CAMERA, ttl_s=600, actor="test"
        )
        response = client.post(
            "/api/v1/pictures",
            content=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"},
        )
    assert response.status_code == 201, response.text
    assert (target / digest[:2] / digest[2:4] / digest).read_bytes() == data
    assert not (tmp_path / "db" / "pictures").exists()
