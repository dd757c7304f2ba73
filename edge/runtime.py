"""The edge box: its stages built, wired and started, each supervised.

Theory of operation
-------------------
The box is a pipeline (docs/architecture.md, "The box as a pipeline"). Readings flow from
the serial lines through occupancy to the lot board, and from there to the signs on one
side and to the uplink on the other; each stage owns its state and hands on what it
produced, and none calls back into this module:

    SerialLine --observation--> OccupancyStage --bay events, bay states--> uplink
        | sensor notices --> SensorNotices --faults, alerts--> uplink
        | lot snapshots --> LotBoard --lot states--> uplink
        |                      +--changed figures--> SignStage --displays--> SignBus
        | a zone's bay changed --> ZoneStage --zone events, states--> uplink
        |                                  +--zones redrawn--> SignStage
    SignBus --events--> SignEvents --faults, alerts, sign states--> uplink
    uplink --other lots, other boxes, the link--> TownView --changed--> SignStage
    uplink --commands--> CommandTable --> the stage whose command it is
    Ticker --deadlines--> OccupancyStage.tick, ZoneStage.refresh, SignStage overrides
    BoxStatusReporter --birth, status, every retained state--> uplink
    box_health <-- reads the parts (HealthSources) for the status, /healthz, /metrics

One asyncio event loop, one task per resource (each serial line, each sign bus, the MQTT
uplink, the health page) plus the ticker and the status loop, all in one TaskGroup and each
wrapped by ``supervised`` so a crash restarts that loop, never the box. Data moves by plain
method calls on the loop, never across threads.

Events are committed to the outbox before they are published (the uplink's job), so a
power cut never loses one the box has accepted. State is recomputed from the sensors and
the schedule at start-up, never trusted from before a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from edge import bay_memory, box_health
from edge.agents.occupancy import Occupancy
from edge.agents.uplink import Uplink
from edge.agents.zones import ZoneAgent
from edge.config import EdgeConfig, config_hash
from edge.config_apply import ConfigApplier
from edge.drivers.serial_line import SerialLine
from edge.drivers.sign_bus import SignBus
from edge.health_http import HealthServer, render_metrics
from edge.outbox import Outbox
from edge.pipeline import commands
from edge.pipeline.alerts import AlertBook
from edge.pipeline.commands import CommandHandler, CommandTable
from edge.pipeline.lot_board import LotBoard
from edge.pipeline.occupancy_stage import OccupancyStage
from edge.pipeline.sensor_notices import SensorNotices
from edge.pipeline.sign_events import SignEvents
from edge.pipeline.sign_stage import SignStage
from edge.pipeline.status import BoxStatusReporter
from edge.pipeline.ticker import Ticker
from edge.pipeline.town_view import TownView
from edge.pipeline.zone_stage import ZoneStage
from edge.release_command import EXIT_RESTART_INTO_RELEASE, ReleaseInstaller, ReleaseSettings
from edge.supervise import Restarts, supervised
from edge.update.gate import gate_failures
from firmware_protocols.uplink.models import ReleaseReport, SiteConfigReport
from firmware_protocols.uplink.topics import Topics

log = logging.getLogger(__name__)


class EdgeBox:
    """Everything one box runs. ``await box.run()`` until cancelled."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        config_digest: str = "unknown",
        clock: Callable[[], float] = time.time,
        site_config: Callable[[], SiteConfigReport | None] = lambda: None,
        config_push: CommandHandler | None = None,
        release: Callable[[], ReleaseReport | None] = lambda: None,
        install_release: CommandHandler | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.boot_id = uuid.uuid4()
        self.started_at = clock()
        self.restarts = Restarts()
        topics = Topics(config.site, config.box_id)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(Outbox.path_in(config.data_dir), config=config.outbox)
        self.occupancy = Occupancy(config, now=self.started_at)
        bay_memory.load_into(self.occupancy, config.data_dir, self.started_at)
        self.zones = ZoneAgent(config, data_dir=config.data_dir, now=self.started_at)
        self.ticker = ticker = Ticker(clock)
        self.town = town = TownView(box_id=config.box_id, own_lots=config.lots)

        # The uplink and the sign buses are built first and hand what they hear to stages
        # built after them (the closures look them up when the first message arrives).
        self.uplink = uplink = Uplink(
            config=config,
            outbox=self.outbox,
            boot_id=self.boot_id,
            birth=lambda: status.birth(),
            states=lambda: status.states(),
            on_command=lambda command: command_table.run(command),
            on_remote_lot=town.remote_lot,
            on_remote_box=town.remote_box,
            on_connection=town.connection,
            clock=clock,
        )
        self.buses = {
            bus_id: SignBus(
                bus_id=bus_id,
                config=bus,
                on_event=lambda event: sign_events.on_event(event),
                wall=clock,
            )
            for bus_id, bus in config.sign_buses.items()
        }

        self.lots = lots = LotBoard(uplink, topics)
        self.signs = signs = SignStage(
            config,
            buses=self.buses,
            lots=lots.snapshots,
            town=town,
            zone_display=self.zones.display,
            outlet=uplink,
            topics=topics,
            wake=ticker.wake,
            clock=clock,
        )
        lots.follow(signs.lot_changed)
        town.follow(signs.project_all)
        alerts = AlertBook(uplink)
        sign_events = SignEvents(
            signs=signs, buses=self.buses, alerts=alerts, outlet=uplink, clock=clock
        )
        self.zone_stage = zone_stage = ZoneStage(
            self.zones,
            occupancy=self.occupancy,
            outlet=uplink,
            topics=topics,
            redraw=signs.redraw_zones,
            schedule_changed=lambda: status.publish(),
            wake=ticker.wake,
            clock=clock,
        )
        self.intake = intake = OccupancyStage(
            self.occupancy,
            notices=SensorNotices(uplink, alerts),
            lots=lots,
            zones=zone_stage,
            outlet=uplink,
            topics=topics,
            wake=ticker.wake,
            clock=clock,
        )
        self.lines = {
            name: SerialLine(name=name, config=line, sink=intake.observe, clock=clock)
            for name, line in config.serial.items()
        }
        ticker.watch(intake.next_deadline, intake.tick)
        ticker.watch(zone_stage.next_deadline, zone_stage.refresh)
        ticker.watch(signs.next_deadline, signs.expire_overrides)

        self.health_sources = health = box_health.HealthSources(
            box_id=config.box_id,
            boot_id=self.boot_id,
            started_at=self.started_at,
            clock=clock,
            network_up=lambda: town.network_up,
            uplink=uplink,
            lines=self.lines,
            buses=self.buses,
            occupancy=self.occupancy,
            lots=lots.snapshots,
            zones=self.zones,
            restarts=self.restarts,
        )
        self.status = status = BoxStatusReporter(
            box_id=config.box_id,
            boot_id=self.boot_id,
            config_digest=config_digest,
            site_config=site_config,
            release=release,
            sensor_count=len(self.occupancy.bays),
            zone_schedule_version=lambda: self.zones.schedule_version if config.zones else None,
            health=lambda: box_health.health_summary(health),
            retained=[lots.states, intake.states, zone_stage.states, signs.states],
            outlet=uplink,
            topics=topics,
            interval_s=config.health.status_interval_s,
            clock=clock,
        )
        self.commands = command_table = CommandTable(
            {
                "rebirth": commands.rebirth,
                "close-bay": intake.close_or_open_bay,
                "open-bay": intake.close_or_open_bay,
                "sign-override": signs.override,
                "zone-schedule": zone_stage.install,
                **({"config-push": config_push} if config_push is not None else {}),
                **({"install-release": install_release} if install_release else {}),
            },
            clock=clock,
        )
        self.health = HealthServer(
            listen=config.health.listen,
            health=lambda: box_health.health_report(health),
            metrics=lambda: box_health.box_metrics(health),
        )

    async def run(self) -> None:
        now = self.clock()
        self.intake.snapshot_lots(self.config.lots, now)
        self.zone_stage.refresh(now)
        self.signs.project_all()
        try:
            await self.health.start()
        except OSError as exc:
            log.warning("health page not served on %s: %s", self.config.health.listen, exc)
        async with asyncio.TaskGroup() as group:

            def run_supervised(name: str, run: Callable[[], object]) -> None:
                group.create_task(
                    supervised(name, run, restarts=self.restarts),  # type: ignore[arg-type]
                    name=name,
                )

            run_supervised("uplink", self.uplink.run)
            for name, line in self.lines.items():
                run_supervised(f"serial:{name}", line.run)
            for bus_id, bus in self.buses.items():
                run_supervised(f"signs:{bus_id}", bus.run)
            run_supervised("clock", self.ticker.run)
            run_supervised("status", self.status.run)
            run_supervised(
                "bay-memory", lambda: bay_memory.keep(self.occupancy, self.config.data_dir)
            )
            if self.health._server is not None:
                run_supervised("health", self.health.run)

    def wake(self) -> None:
        """Look at every deadline again now (the clock was stepped, or a test moved it)."""
        self.ticker.wake()

    def gate(self) -> list[str]:
        """What keeps the box from passing its health gate now (empty: it passes)."""
        report = box_health.health_report(self.health_sources)
        metrics = render_metrics(box_health.box_metrics(self.health_sources))
        return gate_failures(report.detail, metrics)


def run_box(*, config_path: Path, log_level: str = "INFO") -> int:
    """The ``parkgrid edge run`` process: run until SIGTERM or SIGINT, then drain and exit 0.

    What runs is ``config_path`` (already checked by the caller) with the configuration
    central pushed laid over it (``edge.config_apply``). A push rebuilds the box in this
    process; its health gate confirms it or the box rolls it back by itself. After central's
    ``install-release`` switched to a new slot (``edge.release_command``), the box stops the
    same way and exits ``EXIT_RESTART_INTO_RELEASE`` for its supervisor to start the new one."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    digest = f"sha256:{config_hash(config_path)}"

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        applier = ConfigApplier(config_path)
        installer = ReleaseInstaller(ReleaseSettings.from_environment(applier.config.data_dir))

        def restart() -> None:  # the same clean stop as SIGTERM
            task.cancel()

        installer.restart = restart
        installers.append(installer)
        resumed = asyncio.create_task(installer.resume(), name="release-resume")
        try:
            while True:
                await _run_once(applier, installer, digest)
        except asyncio.CancelledError:
            log.info("stopping")
        finally:
            resumed.cancel()

    installers: list[ReleaseInstaller] = []
    started = time.monotonic()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    log.info("stopped after %.1f s", time.monotonic() - started)
    if installers and installers[0].installed is not None:
        log.info(
            "exiting %d: restart into release %s (its boot check, then its trial)",
            EXIT_RESTART_INTO_RELEASE,
            installers[0].installed.version,
        )
        return EXIT_RESTART_INTO_RELEASE
    return 0


async def _run_once(applier: ConfigApplier, installer: ReleaseInstaller, digest: str) -> None:
    """Build and run the box with the applier's configuration until it asks for a rebuild."""
    config = applier.config
    applier.rebuild.clear()
    try:
        # Built inside the loop: the Modbus clients bind to the running loop.
        box = EdgeBox(
            config,
            config_digest=digest,
            site_config=applier.report,
            config_push=applier.handle,
            release=installer.report,
            install_release=installer.handle,
        )
    except Exception as exc:
        if applier.trial is None:
            raise
        applier.roll_back(f"the box did not start with it: {exc}")
        return
    log.info(
        "box %s of site %s starting: %d bay(s), %d line(s), %d sign(s)",
        config.box_id,
        config.site,
        len(box.occupancy.bays),
        len(box.lines),
        len(box.signs.table),
    )
    running = asyncio.create_task(box.run(), name="box")
    rebuild = asyncio.create_task(applier.rebuild.wait(), name="rebuild")
    applier.announce = installer.announce = box.status.publish
    gate = asyncio.create_task(applier.watch(box.gate), name="gate")
    releases = asyncio.create_task(installer.watch(), name="release-state")
    try:
        await asyncio.wait({running, rebuild}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()  # the box ended by itself: its error, if any, goes up
    finally:
        applier.announce = installer.announce = lambda: None
        parts = (releases, gate, rebuild, running)
        stuck = await _stop(parts)
        for part in parts:
            if part not in stuck:
                with contextlib.suppress(asyncio.CancelledError):
                    await part  # done: its error, if it ended with one, goes up
        box.outbox.close()


TEARDOWN_S = 10.0
"""How long a rebuild waits for the old box's tasks after cancelling them, and half as long
again after cancelling those that did not stop a second time."""


async def _stop(parts: tuple[asyncio.Task[object], ...]) -> set[asyncio.Task[object]]:
    """Cancel the tasks and wait for them; return those that would not stop. A rebuild that
    waited for ever on one task that swallowed its cancel left the box dead (CI, stop 27):
    such a task is cancelled once more, then logged with where it was stuck and left
    behind, and the box goes on."""
    for part in parts:
        part.cancel()
    _, stuck = await asyncio.wait(parts, timeout=TEARDOWN_S)
    if stuck:
        for part in stuck:
            part.cancel()
        _, stuck = await asyncio.wait(stuck, timeout=TEARDOWN_S / 2)
    for part in stuck:
        where = io.StringIO()
        part.print_stack(limit=8, file=where)
        log.error(
            "task %s did not stop within %g s of two cancels; the box goes on without it: %s",
            part.get_name(),
            TEARDOWN_S * 1.5,
            where.getvalue(),
        )
    return stuck
