"""The balancer's own limits attacked (``deploy/haproxy/haproxy.cfg`` as the deploy file
writes it, with only a test machine's changes: ``tests/central/test_balancer_pg.py``), in
front of a real ``central serve``.

The frontend allows each address 10 logins a minute (``sc1_http_req_rate(logins)``); the
acl names the login's path. Central routes on the *decoded* path (uvicorn unquotes it), so
a path the balancer compares as written but central decodes to the login must count too.
"""

from __future__ import annotations

import http.client
import sys
import urllib.parse
from pathlib import Path

from simulators.broker import free_port
from tests.central.helpers import SITE, SITE_FILE, wait_for
from tests.central.test_balancer_pg import Balancer
from tests.faults.rig import Proc, record

LOGIN = "/api/v1/auth/login"
RATE = 10  # logins a minute per address, the deploy file's
SPELLINGS = [
    "/api/v1/auth/%6cogin",
    "/api/v1/auth/LOGIN".replace("LOGIN", "%6C%6F%67%69%6E"),
    "/api/v1/auth%2Flogin",
    "/api/v1/%61uth/login",
    "/%61pi/v1/auth/login",
    # A town's spellings (central answers them 404 now, the balancer holds them back too).
    f"/api/v1/towns/{SITE}/auth/login",
    f"/towns/{SITE}/api/v1/auth/login",
    f"/api/v1/towns/{SITE}/auth/%6cogin",
]


def _post(port: int, path: str) -> tuple[int, str, bytes]:
    """POST a wrong login to ``path`` sent as written (no client normalises it)."""
    body = urllib.parse.urlencode({"username": "nobody", "password": "wrong-password"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _by_balancer(answer: tuple[int, str, bytes]) -> bool:
    """The balancer's own 429 (its HTML page), not an answer of central's (JSON)."""
    status, content_type, _ = answer
    return status == 429 and "json" not in content_type


def test_balancer_login_rate_counts_every_spelling_of_the_path(tmp_path: Path) -> None:
    central = Proc(
        argv=[sys.executable, "-m", "parkgrid", "central", "serve",
              "--site", str(SITE_FILE), "--database-url", f"sqlite:///{tmp_path / 'c.db'}",
              "--no-ingest", "--port", str(port := free_port())],
        log=tmp_path / "central.log",
        env={"PARKGRID_FORECAST_EVERY_S": "0"},
    )  # fmt: skip
    balancer = Balancer(tmp_path, [port, port])
    try:
        central.start()
        balancer.proc.start()
        wait_for(
            lambda: balancer.sock.exists() and balancer.status("c1") == "UP",
            timeout=90,
            what="central up behind haproxy",
        )
        # Spend the address's logins of this minute on the path as written.
        answers = [_post(balancer.port, LOGIN) for _ in range(RATE + 1)]
        assert not any(_by_balancer(a) for a in answers[:RATE]), answers
        assert _by_balancer(answers[RATE]), answers[RATE]
        # The same login spelled otherwise must be held back by the balancer as well.
        through = {path: _post(balancer.port, path) for path in SPELLINGS}
        passed = {path: a[:2] for path, a in through.items() if not _by_balancer(a)}
        assert not passed, f"reached central past the balancer's login rate: {passed}"
    finally:
        balancer.proc.stop()
        central.stop()
    record(
        "hostile",
        "balancer login rate, path spelled otherwise",
        {
            "attack": "past the balancer's 10 logins a minute from one address, the login "
            "posted to percent-encoded spellings of its path (%6cogin, auth%2Flogin, ...)",
            "tried": len(SPELLINGS),
            "refused": len(SPELLINGS),
            "notes": "the balancer's 429 for each (acl on the decoded path; was: each "
            "reached central, which routes on the decoded path)",
        },
    )
