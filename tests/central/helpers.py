"""Payload builders and waiting helpers shared by central's tests."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from central.app import create_app
from central.settings import CentralSettings
from firmware_protocols.uplink import (
    BayChanged,
    BayState,
    BoxStatus,
    Event,
    LotState,
    Topics,
    encode_payload,
)
from firmware_protocols.uplink.models import (
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    LotStatus,
    Online,
    OutboxHealth,
    SensorsHealth,
    Trend,
)
from simulators.broker import free_port

SITE_FILE = Path(__file__).with_name("site_small.toml")
SITE = "testtown"
BOOT = uuid.UUID("0b7e1f0c-5d2a-4c3e-9a51-3f6c2d8e4b17")
T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def bay_event(
    box_id: str,
    seq: int,
    bay_id: str,
    to: str = "occupied",
    *,
    lot_id: str | None = "P1",
    when: dt.datetime | None = None,
    historical: bool = False,
) -> Event:
    frm = "free" if to == "occupied" else "occupied"
    when = when or at(seq)
    return Event(
        box_id=box_id,
        boot_id=BOOT,
        seq=seq,
        event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{box_id}/{seq}"),
        ts=when,
        historical=historical,
        body=BayChanged(
            bay_id=bay_id,
            lot_id=lot_id,
            zone_id=None if lot_id else "S1",
            from_state=BayOccupancy(frm),
            to_state=BayOccupancy(to),
            sensor_ts=when,
        ),
    )


def raw(topic: str, payload: Any, received_at: float | None = None) -> tuple[str, bytes, float]:
    data = payload if isinstance(payload, bytes) else encode_payload(payload)
    return topic, data, received_at if received_at is not None else time.time()


def event_msg(event: Event) -> tuple[str, bytes, float]:
    return raw(Topics(SITE, event.box_id).event, event)


def birth(box_id: str, sensor_count: int = 10) -> BoxStatus:
    lane = LaneHealth(depth=0, bytes=0, cap_bytes=1_000_000)
    return BoxStatus(
        box_id=box_id,
        state=Online.ONLINE,
        boot_id=BOOT,
        ts=dt.datetime.now(dt.UTC),
        software_version="0.1.0",
        config_hash="sha256:test",
        sensor_count=sensor_count,
        clock=ClockStatus(synchronised=True),
        health=HealthSummary(
            outbox=OutboxHealth(state=lane, event=lane), sensors=SensorsHealth(total=sensor_count)
        ),
    )


def death(box_id: str) -> BoxStatus:
    from firmware_protocols.uplink.models import OfflineReason

    return BoxStatus(
        box_id=box_id,
        state=Online.OFFLINE,
        boot_id=BOOT,
        ts=dt.datetime.now(dt.UTC),
        reason=OfflineReason.CONNECTION_LOST,
    )


def lot_state(
    lot_id: str = "P1", *, free: int = 7, occupied: int = 3, capacity: int = 10, ts: float = 0
) -> LotState:
    return LotState(
        lot_id=lot_id,
        capacity=capacity,
        free=free,
        occupied=occupied,
        unknown=capacity - free - occupied,
        closed=0,
        status=LotStatus.SPACES_AVAILABLE if free else LotStatus.FULL,
        trend=Trend.STEADY,
        ts=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ts),
    )


def bay_state(bay_id: str, state: str = "occupied", *, lot_id: str | None = "P1") -> BayState:
    return BayState(
        bay_id=bay_id,
        lot_id=lot_id,
        zone_id=None if lot_id else "S1",
        state=BayOccupancy(state),
        since=T0,
        ts=dt.datetime.now(dt.UTC),
    )


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serving(app: Any) -> Iterator[tuple[str, uvicorn.Server]]:
    """Central's app served by uvicorn on a free local port in a thread: (its URL, the server).

    Waits until uvicorn has started; on leaving, asks it to exit and waits up to 10 s.
    """
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: srv.started, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}", srv
    finally:
        srv.should_exit = True
        thread.join(10)


def central_app(work: Path, site_toml: str, *, site_name: str, **settings: Any) -> Any:
    """Central's app on ``site_toml`` written into ``work`` as ``site_name``, with its SQLite
    store in ``work``; ``settings`` are the rest of its CentralSettings."""
    site_file = work / site_name
    site_file.write_text(site_toml, encoding="utf-8")
    return create_app(
        CentralSettings(
            site_file=site_file, database_url=f"sqlite:///{work / 'central.db'}", **settings
        )
    )


@contextmanager
def scratch_schema(pg_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from central.db.engine import normalise_url

    base = normalise_url(pg_url)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def http_status(url: str) -> int:
    """The status of a GET of ``url`` (an error status too, not an exception)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def wait_healthy(url: str, running: Callable[[], bool], tail: Callable[[], str]) -> None:
    """Until central at ``url`` answers /healthz 200; fail with the log's ``tail`` if the
    process stops running or 60 s pass."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert running(), tail()
        try:
            if http_status(f"{url}/healthz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"central did not start:\n{tail()}")


def synced_sqlite(path: Path) -> tuple[Any, Any]:
    """(engine, site): a SQLite store at ``path``, migrated and synced to the test site."""
    from central.db.engine import make_engine
    from central.db.migrate import upgrade
    from central.sites.service import sync_site
    from site_model.site import load_site

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    site = load_site(SITE_FILE)
    sync_site(engine, site)
    return engine, site
