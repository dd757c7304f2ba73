"""A real ``parkgrid central serve`` (API only) for the issue-14 attacks, and its figures.

The attacks of tests/security/test_hostile_*.py run against a real process on loopback, so
what they measure (its memory, its open connections, its log) is what a town's central
would show: not an in-process app that shares the test's heap and logging.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.faults.rig import ROOT, Central, plan_boxes, write_site


@contextmanager
def api_only_central(
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    site: Path | None = None,
    log_level: str = "info",
) -> Iterator[Central]:
    """``central serve --no-ingest`` on SQLite; stopped afterwards."""
    site = site or write_site(tmp / "site.toml", plan_boxes(1, 2))
    central = Central(workdir=tmp, site_file=site, mqtt_url="mqtt://127.0.0.1:1")
    argv = central.proc.argv
    argv[argv.index("--log-level") + 1] = log_level
    argv += ["--no-ingest", *(args or [])]
    central.proc.env.update(env or {})
    central.start()
    try:
        yield central
    finally:
        central.stop()


def add_user(central: Central, name: str, password: str, role: str = "viewer") -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", "add-user", name, "--role", role,
         "--password-stdin", "--database-url", f"sqlite:///{central.db_path}"],
        input=password + "\n", capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr


def cli(central: Central, *args: str) -> str:
    """``parkgrid central ARGS --database-url <central's>``; its standard output."""
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", *args,
         "--database-url", f"sqlite:///{central.db_path}"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def log_records(central: Central) -> list[dict[str, Any]]:
    """Every line of the process's output as the JSON object it must be."""
    import json

    records = []
    for n, line in enumerate(central.proc.log.read_text(errors="replace").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(
                f"line {n} of central's output is not JSON: {line[:200]}"
            ) from None
    return records


def http(
    url: str,
    *,
    data: dict[str, str] | bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 60,
) -> tuple[int, bytes]:
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def login(central: Central, name: str, password: str) -> tuple[int, Any]:
    import json

    status, body = http(
        f"{central.url}/api/v1/auth/login", data={"username": name, "password": password}
    )
    return status, json.loads(body) if body else None


def metric(central: Central, name: str) -> float:
    """One unlabelled sample of central's /metrics."""
    text = central.metrics()
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
