"""Central's fixtures: a migrated store on SQLite and on PostgreSQL (a fresh schema each)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from central.db.engine import make_engine, normalise_url
from central.db.migrate import upgrade
from central.sites.service import sync_site
from site_model.site import Site, SiteIndex, load_site
from tests.central.helpers import SITE_FILE, scratch_schema


def _pg_base() -> str | None:
    url = os.environ.get("PARKGRID_TEST_PG_URL")
    return normalise_url(url) if url else None


@pytest.fixture
def site() -> Site:
    return load_site(SITE_FILE)


@pytest.fixture
def site_index(site: Site) -> SiteIndex:
    return SiteIndex.of(site)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'central.db'}"


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, dropped afterwards."""
    with scratch_schema(pg_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL (skipped where none is configured)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def engine(db_url: str, site: Site) -> Iterator[Engine]:
    """A migrated store with the small site loaded."""
    engine = make_engine(db_url)
    upgrade(engine)
    sync_site(engine, site)
    yield engine
    engine.dispose()
