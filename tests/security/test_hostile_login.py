"""Issue 14 item 4: a burst of wrong logins cannot race the back-off or exhaust memory.

Against a real ``parkgrid central serve``: 100 wrong passwords for one user from one
address, all at once. Each answer is either 401 (a password was checked) or 429 (refused
before any check); at most ``login_max_failures`` are checked before the back-off starts,
however the requests interleave, and the process's peak memory stays within 300 MB (each
argon2 check takes 64 MiB). The first back-off is set long here (60 s) so that no window
can pass during the burst on a slow machine: the bound is then exactly 5, not a timing.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.central.helpers import wait_for
from tests.faults.rig import record
from tests.security.hostile import add_user, api_only_central, login, metric, peak_rss_mb

BURST = 100
MAX_FAILURES = 5
MEMORY_LIMIT_MB = 300


def test_hostile_login_burst_gets_five_checks_and_bounded_memory(tmp_path: Path) -> None:
    env = {"PARKGRID_LOGIN_BACKOFF_S": "60"}
    with api_only_central(tmp_path, env=env) as central:
        add_user(central, "ada", "ada-right-password")
        assert central.proc.proc is not None
        pid = central.proc.proc.pid
        before_mb = peak_rss_mb(pid)
        start = threading.Barrier(BURST)

        def attempt(n: int) -> int:
            start.wait()
            return login(central, "ada", f"wrong-guess-{n:03d}")[0]

        with ThreadPoolExecutor(BURST) as pool:
            statuses = list(pool.map(attempt, range(BURST)))
        checked = statuses.count(401)
        refused = statuses.count(429)
        assert checked + refused == BURST, sorted(set(statuses))
        assert checked <= MAX_FAILURES, f"{checked} passwords checked in one back-off window"
        assert metric(central, "parkgrid_central_password_checks_total") == checked
        # The right password waits out the back-off like any other guess.
        status, body = login(central, "ada", "ada-right-password")
        assert status == 429, body
        peak_mb = peak_rss_mb(pid)
    assert peak_mb <= MEMORY_LIMIT_MB, f"central peaked at {peak_mb:.0f} MB"
    record(
        "hostile",
        "login burst (one user, one address)",
        {
            "attack": f"{BURST} concurrent wrong passwords for one user from one address, "
            "then the right one",
            "tried": BURST + 1,
            "refused": BURST + 1,
            "notes": f"{checked} passwords checked (limit {MAX_FAILURES}), {refused + 1} refused "
            f"429 before any check; peak memory {before_mb:.0f} -> {peak_mb:.0f} MB "
            f"(limit {MEMORY_LIMIT_MB})",
        },
    )


SPRAY = 80
ADDRESSES = 40  # two guesses from each: within every address's and user name's allowance


def _from(address: str, url: str, data: bytes | None = None) -> int:
    """One HTTP request to central from a given loopback source address; its status."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(
        parsed.hostname, parsed.port, timeout=300, source_address=(address, 0)
    )
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if data else {}
        conn.request("POST" if data else "GET", parsed.path, body=data, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_hostile_login_spray_from_many_addresses_leaves_the_api_answering(
    tmp_path: Path,
) -> None:
    """80 logins at once from 40 addresses, each for a user name of its own: no back-off
    applies, so each waits its turn for the password check. Waiting must not hold one of
    the server's worker threads, or the other routes queue behind the guesses: every
    /healthz asked meanwhile answers while most of the guesses are still waiting."""
    env = {"PARKGRID_PASSWORD_CHECK_WAIT_S": "120"}
    with api_only_central(tmp_path, env=env) as central:
        assert central.proc.proc is not None
        pid = central.proc.proc.pid
        finished: list[int] = []
        lock = threading.Lock()

        def guess(n: int) -> int:
            form = urllib.parse.urlencode({"username": f"user{n}", "password": "guess-1234"})
            status = _from(f"127.0.1.{n % ADDRESSES + 1}", f"{central.url}/api/v1/auth/login",
                           form.encode())  # fmt: skip
            with lock:
                finished.append(status)
            return status

        with ThreadPoolExecutor(SPRAY + 10) as pool:
            guesses = [pool.submit(guess, n) for n in range(SPRAY)]
            # Once the first guess is answered, the server holds all of them (sent at once).
            wait_for(lambda: finished, timeout=120, what="the first guess to be answered")
            health = [pool.submit(_from, "127.0.0.1", f"{central.url}/healthz") for _ in range(10)]
            statuses = [h.result() for h in health]
            with lock:
                pending_when_answered = SPRAY - len(finished)
            results = [g.result() for g in guesses]
        peak_mb = peak_rss_mb(pid)
    assert statuses == [200] * 10
    assert set(results) <= {401, 503}, results
    assert pending_when_answered > SPRAY / 2, (
        f"/healthz answered only once {SPRAY - pending_when_answered} of {SPRAY} guesses were done"
    )
    assert peak_mb <= MEMORY_LIMIT_MB, f"central peaked at {peak_mb:.0f} MB"
    record(
        "hostile",
        "login spray from many addresses",
        {
            "attack": f"{SPRAY} logins at once from {ADDRESSES} addresses, a user name each "
            "(no back-off applies), while /healthz is asked",
            "tried": SPRAY,
            "refused": results.count(401) + results.count(503),
            "notes": f"/healthz 200 x10 with {pending_when_answered} guesses still waiting for "
            f"their turn (one password check at a time, waiting costs no worker thread); "
            f"{results.count(401)} checked 401, {results.count(503)} 503; peak {peak_mb:.0f} MB",
        },
    )
