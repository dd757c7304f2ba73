"""The access log leaves out passing health checks: HAProxy asks every process's /healthz
every 2 s, about 1,800 lines an hour per process that buried the requests people made
(found by a technician's walk through docs/scale.md). A failing check stays in the log."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from central.access_log import QUIET_HEALTH_CHECKS
from simulators.broker import free_port
from tests.central.helpers import SITE_FILE, http_status, wait_healthy
from tests.faults.rig import Proc


def _access(path: str, status: int) -> logging.LogRecord:
    """A record as uvicorn's access logger makes it."""
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:40000", "GET", path, "1.1", status), None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "status", "kept"),
    [
        ("/healthz", 200, False),
        ("/healthz?probe=1", 200, False),
        ("/healthz", 503, True),  # degraded: worth a line
        ("/api/v1/lots", 200, True),
        ("/healthzz", 404, True),
        ("/towns/north/healthz", 404, True),
    ],
)
def test_only_passing_health_checks_are_left_out(path: str, status: int, kept: bool) -> None:
    assert QUIET_HEALTH_CHECKS.filter(_access(path, status)) is kept


def test_a_record_of_another_shape_is_kept() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "odd %s", ("x",), None)
    assert QUIET_HEALTH_CHECKS.filter(record) is True


def test_a_served_central_logs_requests_but_not_passing_health_checks(tmp_path: Path) -> None:
    port = free_port()
    proc = Proc(
        argv=[sys.executable, "-m", "parkgrid", "central", "serve", "--site", str(SITE_FILE),
              "--database-url", f"sqlite:///{tmp_path / 'c.db'}", "--no-ingest",
              "--port", str(port), "--log-level", "info"],
        log=tmp_path / "central.log",
        env={"PARKGRID_FORECAST_EVERY_S": "0"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    proc.start()
    try:
        wait_healthy(url, lambda: proc.running, proc.tail)
        for _ in range(5):
            assert http_status(f"{url}/healthz") == 200
        assert http_status(f"{url}/api/v1/public/board") == 200
    finally:
        proc.stop()
    log = proc.log.read_text(errors="replace")
    assert "GET /api/v1/public/board" in log, "the access log is on"
    assert "GET /healthz" not in log
