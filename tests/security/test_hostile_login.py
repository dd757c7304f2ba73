"""Issue 14 item 4: a burst of wrong logins cannot race the back-off or exhaust memory.

Against a real ``parkgrid central serve``: 100 wrong passwords for one user from one
address, all at once. Each answer is either 401 (a password was checked) or 429 (refused
before any check); at most ``login_max_failures`` are checked before the back-off starts,
however the requests interleave, and the process's peak memory stays within 300 MB (each
argon2 check takes 64 MiB). The first back-off is set long here (60 s) so that no window
can pass during the burst on a slow machine: the bound is then exactly 5, not a timing.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
