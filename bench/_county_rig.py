"""The county's deployment on this machine: Mosquitto with ``deploy/mosquitto``, a scratch
PostgreSQL schema, two ``central serve --ingest-group`` processes and HAProxy with
``deploy/haproxy/haproxy.cfg`` in front.

Built from the test rigs, not copied: the broker is Debian's stock configuration with
``deploy/mosquitto/parkgrid.conf`` as written (``tests/central/test_deploy_broker.py``:
paths moved, ports replaced), every box with its own password and ACL block as
``provision-box`` writes them (``central.provision``), boxes over TLS, central on the
loopback listener with its password; the central processes are
``tests/central/test_processes_pg.Serve`` with the settings ``deploy/systemd/central.env.example``
raises behind a balancer; the balancer is ``tests/central/test_balancer_pg.Balancer`` (the
deploy file with a test machine's changes only).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

from central.provision import box_acl, central_acl, password_line
from simulators.broker import free_port, wait_for_port
from site_model.site import Site
from tests.central.helpers import scratch_schema, wait_for
from tests.central.test_balancer_pg import Balancer
from tests.central.test_deploy_broker import (
    DEPLOY,
    STOCK,
    broker_owned,
    make_certificates,
    substitute,
)
from tests.central.test_processes_pg import Serve

CENTRAL_SECRET = "bench-central-secret"
BOX_SECRET = "bench-box-secret"  # one for all boxes: the bench's, not a field practice
PG_URL = os.environ.get("PARKGRID_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
# What deploy/systemd/central.env.example raises for processes behind the balancer.
CENTRAL_ENV = {
    "PARKGRID_MQTT_USERNAME": "central",
    "PARKGRID_MQTT_PASSWORD": CENTRAL_SECRET,
    "PARKGRID_HTTP_MAX_CONNECTIONS": "1000",
    "PARKGRID_HTTP_MAX_CONNECTIONS_PER_ADDRESS": "1000",
    "PARKGRID_STREAM_MAX_CLIENTS": "500",
    "PARKGRID_STREAM_COALESCE_S": "0.25",
    "PARKGRID_BATCH_DELAY_S": "0.2",
}


@dataclass
class Broker:
    proc: subprocess.Popen[bytes]
    tls_port: int
    local_port: int
    ca: Path

    @property
    def local_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.local_port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://localhost:{self.tls_port}"


def start_broker(scratch: Path, site: Site, per_town: bool = False) -> Broker:
    """The deploy broker with every box of ``site`` provisioned (password line and ACL
    block from ``central.provision``, written at once rather than 350 ``provision-box``
    runs)."""
    etc = scratch / "etc" / "mosquitto"
    for sub in ("conf.d", "certs"):
        (etc / sub).mkdir(parents=True)
    for path in ("run/mosquitto", "var/lib/mosquitto", "var/log/mosquitto"):
        (scratch / path).mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(scratch / path, user="mosquitto", group="mosquitto")
    for d in [scratch, *scratch.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    tls_port, local_port = free_port(), free_port()
    ports = {8883: tls_port, 1883: local_port}
    (etc / "mosquitto.conf").write_text(substitute(STOCK.read_text(), scratch, ports))
    (etc / "conf.d" / "parkgrid.conf").write_text(
        substitute((DEPLOY / "parkgrid.conf").read_text(), scratch, ports)
    )
    make_certificates(etc / "certs")
    lines = [password_line("central", CENTRAL_SECRET)]
    lines += [password_line(box, BOX_SECRET) for box in site.boxes]
    (etc / "passwd").write_text("\n".join(lines) + "\n")
    blocks = [central_acl()] + [
        box_acl(box.split("-", 1)[0] if per_town else site.id, box) for box in site.boxes
    ]
    (etc / "acl").write_text("\n".join(blocks))
    for name in ("passwd", "acl"):
        broker_owned(etc / name, 0o640)
    log = (scratch / "mosquitto.out").open("wb")
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(etc / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for port in (local_port, tls_port):
            wait_for_port("127.0.0.1", port, timeout=20)
    except TimeoutError as exc:
        _stop(proc)
        raise SystemExit(
            f"mosquitto did not start:\n{(scratch / 'mosquitto.out').read_text()}"
        ) from exc
    return Broker(proc, tls_port, local_port, etc / "certs" / "ca.crt")


class County:
    """The running deployment: ``broker``, ``db_url``, ``pair`` (two Serve), ``balancer``."""

    def __init__(self, work: Path, site_file: Path, site: Site, county: bool = False) -> None:
        self.work, self.site_file, self.site, self.county = work, site_file, site, county
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> County:
        try:
            return self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> County:
        stack = self._stack
        self.db_url = stack.enter_context(scratch_schema(PG_URL))
        self.broker = start_broker(self.work / "broker", self.site, self.county)
        stack.callback(_stop, self.broker.proc)
        link = SimpleNamespace(url=self.broker.local_url)  # what Serve reads of a broker
        self.pair = [
            Serve(name, self.db_url, link, self.work, CENTRAL_ENV, site_file=self.site_file)  # type: ignore[arg-type]
            for name in ("a", "b")
        ]
        if self.county:  # serve --county FILE in place of --site FILE
            for serve in self.pair:
                argv = serve.proc.argv
                argv[argv.index("--site")] = "--county"
        self.balancer = Balancer(self.work, [s.port for s in self.pair])
        for serve in self.pair:
            serve.proc.start()
            stack.callback(serve.proc.stop)
        for serve in self.pair:
            wait_for(serve.healthy, timeout=300, what=f"central {serve.name} healthy")
        self.balancer.proc.start()
        stack.callback(self.balancer.proc.stop)
        wait_for(
            lambda: (
                self.balancer.sock.exists()
                and self.balancer.status("c1") == self.balancer.status("c2") == "UP"
            ),
            timeout=60,
            what="haproxy to see both processes UP",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def served(self) -> bool:
        """One API request through the balancer answered 200."""
        try:
            url = f"{self.balancer.url}/api/v1/lots"
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def cpu(self) -> float:
        """CPU seconds of every central process and its children (the writer processes)
        so far; a killed process keeps what it had at its last reading."""
        total = 0.0
        for serve in self.pair:
            if serve.proc.running and serve.proc.proc is not None:
                self._cpu_seen[serve.name] = tree_cpu(serve.proc.proc.pid)
            total += self._cpu_seen.get(serve.name, 0.0)
        return total

    def cpu_parts(self) -> dict[str, tuple[float, float]]:
        """Per running process: (its own CPU seconds, its children's: the writer)."""
        out = {}
        for serve in self.pair:
            if serve.proc.running and serve.proc.proc is not None:
                own = psutil.Process(serve.proc.proc.pid).cpu_times()
                total = tree_cpu(serve.proc.proc.pid)
                out[serve.name] = (own.user + own.system, total - own.user - own.system)
        return out

    def server_cpu(self) -> dict[str, float]:
        """CPU seconds so far of the broker and of the PostgreSQL backends serving the
        central processes (found by their client ports in ``pg_stat_activity``; pooled
        connections live long, so their deltas are the database's work for central)."""
        out = {"broker": tree_cpu(self.broker.proc.pid)}
        ports = set()
        for serve in self.pair:
            if serve.proc.running and serve.proc.proc is not None:
                root = psutil.Process(serve.proc.proc.pid)
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        ports |= {c.laddr.port for c in proc.net_connections("tcp")
                                  if c.raddr and c.raddr.port == 5432}  # fmt: skip
        from sqlalchemy import create_engine, text

        engine = create_engine(self.db_url.split("?")[0])
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT pid, client_port FROM pg_stat_activity")).all()
        engine.dispose()
        backends = [pid for pid, port in rows if port in ports]
        seen = self._backend_cpu
        for pid in backends:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                seen[pid] = t.user + t.system
        out["postgresql"] = sum(seen.values())
        return out

    _backend_cpu: dict[int, float] = {}  # noqa: RUF012 - one county per bench run
    _cpu_seen: dict[str, float] = {}  # noqa: RUF012 - one county per bench run

    def metric(self, serve: Serve, name: str) -> float | None:
        """A figure of one process's ``/metrics`` (the first sample of ``name``)."""
        with urllib.request.urlopen(f"{serve.url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        found = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
        return float(found.group(1)) if found else None


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live children, from /proc."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_until(check: Any, timeout: float, step: float = 0.25) -> float | None:
    """Seconds until ``check()`` holds, or None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    return None


def pg_waits(db_url: str, samples: int = 20, every: float = 0.5) -> list[tuple[int, str]]:
    """What this database's other active sessions wait on, sampled from
    ``pg_stat_activity`` (wait event or ``cpu``, and the statement's start): where a slow
    ingest spends its time on the server. The most frequent first."""
    from collections import Counter

    from sqlalchemy import create_engine, text

    from central.db.engine import normalise_url

    engine = create_engine(normalise_url(db_url).split("?")[0])
    seen: Counter[str] = Counter()
    with engine.connect() as conn:
        for _ in range(samples):
            rows = conn.execute(
                text(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu'),"
                    " left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
                    " FROM pg_stat_activity WHERE state = 'active'"
                    " AND pid <> pg_backend_pid() AND datname = current_database()"
                )
            ).all()
            seen.update(f"{wait} | {query}" for wait, query in rows)
            time.sleep(every)
    engine.dispose()
    return [(n, what) for what, n in seen.most_common(8)]
