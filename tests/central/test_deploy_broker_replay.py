"""Every box of a town replays at once through the deploy broker configuration: nothing is
dropped (issue 17 finding 4).

The broker is Debian's stock configuration with ``deploy/mosquitto/parkgrid.conf`` as
written (paths moved, ports replaced: tests/central/test_deploy_broker.py), the boxes are
provisioned with ``provision-box`` and connect over TLS with their passwords, central on
the loopback listener with its own. Three boxes each come back with 50,000 buffered events
while central's writer is held busy, so the backlog piles up at the broker. Each box has
at most its send window (10,000) out above central's ack, so the broker's queue for
central never passes its ``max_queued_messages``; with the old window of 50,000 the three
boxes together could have 150,000 out, past what the broker and central hold (121,000).
No box resends (``resend_after_s`` is 10 minutes), so a message the broker dropped would
be missing at central: every event must arrive exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.mqtt import CentralMqtt
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from central.sites.service import sync_site
from edge.agents.uplink import Uplink
from edge.config import EdgeConfig, MqttConfig, OutboxConfig
from edge.outbox import Outbox
from firmware_protocols.uplink import BayChanged, BoxStatus, Command, CommandReply
from firmware_protocols.uplink.models import (
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    Online,
    OutboxHealth,
    SensorsHealth,
)
from simulators.broker import free_port, wait_for_port
from site_model.site import SiteIndex, load_site
from tests.central.test_deploy_broker import (
    DEPLOY,
    STOCK,
    broker_owned,
    make_certificates,
    substitute,
)
from tests.central.test_deploy_broker import scratch as scratch  # the fixture, for pytest

SITE_FILE = Path(__file__).parent / "site_small.toml"
BOXES = {"box-p1": "P1", "box-p2": "P2", "box-s1": None}
PER_BOX = 50_000
T0 = dt.datetime(2026, 12, 6, 8, tzinfo=dt.UTC)


def start_broker(
    scratch: Path, tweak: Callable[[str], str] | None = None
) -> tuple[subprocess.Popen[bytes], int, int, Path]:
    """deploy/README.md's broker: stock Debian config + ours; the boxes provisioned.
    ``tweak`` changes our config's text first (a test that needs the broker to drop)."""
    etc = scratch / "etc" / "mosquitto"
    for sub in ("conf.d", "certs"):
        (etc / sub).mkdir(parents=True)
    for path in ("run/mosquitto", "var/lib/mosquitto", "var/log/mosquitto"):
        (scratch / path).mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(scratch / path, user="mosquitto", group="mosquitto")
    for d in scratch.rglob("*"):
        if d.is_dir():
            d.chmod(0o755)
    tls_port, local_port = free_port(), free_port()
    ports = {8883: tls_port, 1883: local_port}
    (etc / "mosquitto.conf").write_text(substitute(STOCK.read_text(), scratch, ports))
    ours = substitute((DEPLOY / "parkgrid.conf").read_text(), scratch, ports)
    if tweak is not None:
        ours = tweak(ours)
    (etc / "conf.d" / "parkgrid.conf").write_text(ours)
    make_certificates(etc / "certs")
    passwd, acl = etc / "passwd", etc / "acl"
    passwd.touch()
    broker_owned(passwd, 0o640)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "central", "central-secret"],
                   check=True)  # fmt: skip
    shutil.copyfile(DEPLOY / "acl.initial", acl)
    broker_owned(acl, 0o640)
    for box in BOXES:
        ran = subprocess.run(
            [
                sys.executable, "-m", "parkgrid", "central", "provision-box", box,
                "--site", str(SITE_FILE), "--mqtt-url", f"mqtts://localhost:{tls_port}",
                "--out", str(scratch / "box-files" / box), "--password-file", str(passwd),
                "--acl-file", str(acl),
            ],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
    log = (scratch / "mosquitto.out").open("wb")
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(etc / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT
    )
    for port in (local_port, tls_port):
        wait_for_port("127.0.0.1", port, timeout=20)
    return proc, tls_port, local_port, etc / "certs" / "ca.crt"


def make_box(scratch: Path, box: str, tls_port: int, ca: Path, events: int = PER_BOX) -> Uplink:
    files = scratch / "box-files" / box
    config = EdgeConfig(
        site="testtown",
        box_id=box,
        data_dir=scratch / "data" / box,
        mqtt=MqttConfig(
            url=f"mqtts://localhost:{tls_port}",
            ca_file=ca,
            username=box,
            password_file=files / "mqtt-password",
            max_inflight=1000,
        ),
        outbox=OutboxConfig(resend_after_s=600),
    )
    outbox = Outbox.for_box(data_dir=config.data_dir, boot_id=uuid.uuid4(),
                            events_max_bytes=1 << 28, state_max_bytes=1 << 20)  # fmt: skip

    def birth() -> BoxStatus:
        return BoxStatus(
            box_id=box, state=Online.ONLINE, boot_id=outbox.boot_id,
            ts=dt.datetime.now(dt.UTC), software_version="test", config_hash="sha256:test",
            sensor_count=10, clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(state=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 20),
                                    event=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 28)),
                sensors=SensorsHealth(total=10),
            ),
        )  # fmt: skip

    def states() -> list[tuple[str, BaseModel]]:
        return []

    async def on_command(command: Command) -> CommandReply:  # pragma: no cover
        return CommandReply(command_id=command.command_id, command=command.name, ok=True, ts=T0)

    uplink = Uplink(
        config=config, outbox=outbox, boot_id=outbox.boot_id, birth=birth, states=states,
        on_command=on_command, on_remote_lot=lambda b, s: None,
        on_remote_box=lambda b, u: None, on_connection=lambda u: None,
    )  # fmt: skip
    lot = BOXES[box]
    for i in range(events):
        uplink.emit(
            BayChanged(
                bay_id=f"{lot or 'S1'}-x{i % 7}",
                lot_id=lot,
                zone_id=None if lot else "S1",
                from_state=BayOccupancy.FREE,
                to_state=BayOccupancy.OCCUPIED,
                sensor_ts=T0,
            )
        )
    outbox.flush()
    return uplink


async def until(predicate: object, what: str, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


@pytest.mark.long
async def test_a_whole_town_replays_through_the_deploy_broker_and_nothing_is_dropped(
    scratch: Path,
) -> None:
    proc, tls_port, local_port, ca = start_broker(scratch)
    site = load_site(SITE_FILE)
    engine = make_engine(f"sqlite:///{scratch / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    settings = CentralSettings(
        site_file=SITE_FILE,
        mqtt_url=f"mqtt://127.0.0.1:{local_port}",
        mqtt_username="central",
        mqtt_password="central-secret",  # type: ignore[arg-type]
        instance="c-deploy",
    )
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    link = CentralMqtt(settings=settings, site_id=site.id, writer=writer, writer_process=False)
    uplinks = [make_box(scratch, box, tls_port, ca) for box in BOXES]
    tasks: list[asyncio.Task[None]] = []
    link.start()
    try:
        assert link.wait_connected(10)
        window = uplinks[0].stats().send_window
        with writer._lock:  # central's writer busy: the replays pile up at the broker
            tasks = [asyncio.create_task(u.run()) for u in uplinks]
            await until(
                lambda: all(u.stats().events_published >= window for u in uplinks),
                "every box's first window sent",
                120,
            )
        ev = t.events.c

        def held() -> dict[str, int]:
            with engine.connect() as conn:
                query = select(ev.box_id, func.count()).group_by(ev.box_id)
                return {box: int(n) for box, n in conn.execute(query).all()}

        try:
            await until(
                lambda: all(u.stats().last_seq == u.acked_seq for u in uplinks),
                "every box's replay acked",
                300,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; central holds {held()} of {PER_BOX} each") from None
        assert held() == dict.fromkeys(BOXES, PER_BOX)
        assert all(u.stats().resends == 0 for u in uplinks)
        assert writer.stats.events_duplicate == 0
    finally:
        for u in uplinks:
            await u.stop()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        link.stop()
        proc.terminate()
        proc.wait(timeout=10)
        engine.dispose()


REPLAY = 200_000


@pytest.mark.long
async def test_one_box_replays_200k_through_the_deploy_broker_while_another_stays_live(
    scratch: Path,
) -> None:
    """Finding 4's replay: one box back with 200,000 events (paced by its send window),
    every event stored once, nothing dropped by the broker; another box's live events are
    timed from emit to central's ack meanwhile (printed, not asserted: a shared machine)."""
    proc, tls_port, local_port, ca = start_broker(scratch)
    site = load_site(SITE_FILE)
    engine = make_engine(f"sqlite:///{scratch / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    settings = CentralSettings(
        site_file=SITE_FILE,
        mqtt_url=f"mqtt://127.0.0.1:{local_port}",
        mqtt_username="central",
        mqtt_password="central-secret",  # type: ignore[arg-type]
        instance="c-deploy-200k",
    )
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    link = CentralMqtt(settings=settings, site_id=site.id, writer=writer, writer_process=False)
    started = time.monotonic()
    replaying = make_box(scratch, "box-p1", tls_port, ca, events=REPLAY)
    live = make_box(scratch, "box-p2", tls_port, ca, events=0)
    print(f"200,000 events buffered in {time.monotonic() - started:.1f} s")
    uplinks = [replaying, live]
    tasks: list[asyncio.Task[None]] = []
    lags: list[float] = []
    link.start()
    try:
        assert link.wait_connected(10)
        await until(lambda: link.broker.reported, "central reads the broker's drop count", 30)
        dropped_before = link.broker.dropped_total
        tasks = [asyncio.create_task(u.run()) for u in uplinks]
        await until(lambda: live.live, "the live box connected", 60)
        replay_started = time.monotonic()
        sent: dict[int, float] = {}
        while replaying.acked_seq < REPLAY:
            if time.monotonic() - replay_started > 900:
                raise AssertionError(f"replay not acked in 900 s: at {replaying.acked_seq}")
            seq = live.emit(
                BayChanged(bay_id="P2-x1", lot_id="P2", zone_id=None,
                           from_state=BayOccupancy.FREE, to_state=BayOccupancy.OCCUPIED,
                           sensor_ts=dt.datetime.now(dt.UTC))
            )  # fmt: skip
            sent[seq] = time.monotonic()
            step = time.monotonic() + 0.2
            while time.monotonic() < step:
                acked = live.acked_seq
                for done in [s for s in sent if s <= acked]:
                    lags.append(time.monotonic() - sent.pop(done))
                await asyncio.sleep(0.01)
        drain = time.monotonic() - replay_started
        await until(lambda: live.acked_seq == live.stats().last_seq, "the live box acked", 60)
        ev = t.events.c
        with engine.connect() as conn:
            held = dict(conn.execute(select(ev.box_id, func.count()).group_by(ev.box_id)).all())
        lags.sort()
        p50, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(
            f"200,000 replayed in {drain:.1f} s ({REPLAY / drain:.0f} events/s); box-p2's "
            f"live lag emit->ack over {len(lags)} events: p50 {p50 * 1000:.0f} ms, p99 "
            f"{p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms; broker dropped "
            f"{link.broker.dropped_total - dropped_before}; load {os.getloadavg()}"
        )
        assert held["box-p1"] == REPLAY and writer.stats.events_duplicate == 0
        assert held["box-p2"] == live.stats().last_seq
        assert replaying.stats().resends == 0
        # The broker's own count agrees: nothing was dropped (it publishes a changed count
        # every sys_interval, 10 s, and nothing when it did not change: so wait that long).
        await asyncio.sleep(11)
        assert link.broker.dropped_total == dropped_before
    finally:
        for u in uplinks:
            await u.stop()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
        link.stop()
        proc.terminate()
        proc.wait(timeout=10)
        engine.dispose()
