"""Shared fixtures: real peers on loopback (a Mosquitto per test module, pty pairs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.broker import MosquittoBroker

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A fresh Mosquitto on a free port, with no persistence, for one test."""
    with MosquittoBroker(workdir=tmp_path / "broker") as broker:
        yield broker


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL URL for store tests; skipped with a reason where none is configured.
    Session-wide (it only reads the environment), so module-wide stores can take it."""
    url = os.environ.get("PARKGRID_TEST_PG_URL")
    if not url:
        pytest.skip("PARKGRID_TEST_PG_URL is not set: no PostgreSQL to test against")
    return url


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
