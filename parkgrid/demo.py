"""``parkgrid demo``: the whole town on this machine, in one command.

What runs (every process in its own process group, stopped with SIGTERM then SIGKILL)::

    broker      mosquitto on a free loopback port; without mosquitto (or with
                --embedded-broker) amqtt, pure Python (simulators.embedded_broker);
                or none with --broker URL
    central     parkgrid central serve, SQLite in the run folder, the dashboard on --port
    boxes       parkgrid edge run, one per lot and per stall area, generated configs
    this process
      concentrators  one per box, frames on a pty the box reads (ConcentratorSimulator)
      signs          one Modbus TCP server per box with its signs (SignSimulator)
      relay          a cuttable TCP relay between the faulted box and the broker
      cameras        captures posted to central with a camera token (simulators.cameras)
      town           the day's plan played against all of it (simulators.town)

Time: the town's clock runs ``--speed`` times faster than the wall clock and starts at
``--start`` (04:30) of yesterday (so no capture is ever stamped in the future); ``--duration``
is wall seconds. The boxes keep the wall clock, so each stall zone's trading hours are
written into its box's config as date overrides at the wall times the town's clock reaches
them; grace periods, escalation steps and the sensors' heartbeat and timeout are divided by
the speed the same way.

The day: ``--demand`` (1.6, a busy day) fills the lots at the morning and evening peaks;
drivers read the live signs when they arrive (a share know the town); the faults strike in
the peaks (a sensor dies, a box loses its network, a sign reboots, a box restarts).

The run folder holds ``demo.json`` (URLs, the demo login, the camera token, every process
with its pid), the logs, the generated configs, ``truth.json`` (what every lot holds by the
simulation when the town stops, and where the drivers went), which the end-to-end test
compares with central, ``truth-timeline.jsonl`` (every bay change with its lot's truth, every
driver and fault, wall and town time) and ``signs/<box>-display.jsonl`` (every change of
what each sign shows, with its wall time), which ``bench/field_truth.py`` reads. At the end
the processes stop in order: boxes, central, then the broker.
A second demo while one runs finds the lock file and its live pid, and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parkgrid.demo_broker import CENTRAL_MQTT_USER, TownAccess, start_field_broker
from parkgrid.demo_configs import box_configs as box_configs  # re-exported: the tests' name
from parkgrid.demo_configs import heartbeat_wall_s
from parkgrid.demo_lock import alive, demo_lock, lock_path, port_busy
from parkgrid.demo_processes import (
    Child,
    DemoError,
    Processes,
    exit_words,
    free_port,
    parkgrid_argv,
    run_checked,
)
from parkgrid.demo_terminal import DEMO_USER, DemoTerminal
from simulators.sites import XIGANG

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_SITE = XIGANG
DEMO_CAMERA_SKEW_MINUTES = 30 * 24 * 60
STARTUP_ALLOWANCE_S = 25.0
DEFAULT_DEMAND = 1.6  # a busy day: the morning peak fills the lots (1.0: a quiet day)


@dataclass
class Options:
    site: Path
    speed: float
    duration: float | None
    seed: int
    broker: str | None
    port: int
    host: str
    run_dir: Path | None
    headless: bool
    hold: bool
    embedded_broker: bool = False
    demand: float = DEFAULT_DEMAND
    start: str = "04:30"


async def _wait_http(url: str, *, within: float, child: Child | None = None) -> None:
    import httpx

    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if child is not None and child.proc.poll() is not None:
                tail = child.log.read_text(errors="replace")[-1500:]
                raise DemoError(f"{child.name} exited ({child.proc.returncode}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(url)
                if response.status_code < 500 or response.status_code == 503:
                    return
            if time.monotonic() > deadline:
                raise DemoError(f"{url} did not answer within {within:.0f} s")
            await asyncio.sleep(0.3)


class Demo(DemoTerminal):
    def __init__(self, options: Options) -> None:
        from site_model.site import load_site

        self.options = options
        self.site = load_site(options.site)
        self.run_dir = options.run_dir or Path(tempfile.mkdtemp(prefix="parkgrid-demo-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        self.processes = Processes(logs=self.run_dir / "logs")
        self.url = f"http://{options.host}:{options.port}"
        self.password = secrets.token_urlsafe(9)
        self.camera_tokens: dict[str, str] = {}
        self.access = TownAccess(broker_dir=self.run_dir / "broker")
        self.broker: Any = None
        self.user_token: str | None = None
        self.driver: Any = None
        self.clock: Any = None
        self.started = time.time()
        self.stop_requested = asyncio.Event()

    # state file

    def write_state(self, **extra: Any) -> None:
        state = {
            "pid": os.getpid(),
            "url": self.url,
            "dashboard": f"{self.url}/",
            "login": {"username": DEMO_USER, "password": self.password},
            "camera_tokens": self.camera_tokens,
            "run_dir": str(self.run_dir),
            "broker": self.broker_url,
            # central's MQTT user (reads everything): mosquitto_sub -u central -P ...
            "mqtt": {"username": CENTRAL_MQTT_USER, "password": self.access.central_password},
            "site_file": str(self.options.site),
            "boxes": sorted(self.site.boxes),
            "processes": [
                {"name": c.name, "pid": c.pid, "argv": c.argv} for c in self.processes.children
            ],
            **extra,
        }
        tmp = self.run_dir / "demo.json.new"
        tmp.write_text(json.dumps(state, ensure_ascii=False, indent=2, default=str))
        tmp.replace(self.run_dir / "demo.json")

    @property
    def broker_url(self) -> str:
        if self.options.broker:
            return self.options.broker
        return self.broker.url if self.broker is not None else ""

    # steps

    def box_dir(self, box_id: str) -> Path:
        return self.run_dir / "boxes" / box_id

    def start_broker(self) -> None:
        # Every box gets its password file even with --broker (a broker of the user's own,
        # used as it is: the passwd and ACL written here are then not used by it).
        self.access.provision(self.site, {b: self.box_dir(b) for b in self.site.boxes})
        if self.options.broker:
            return
        from simulators.broker import BrokerError

        try:
            self.broker, note = start_field_broker(
                self.access, self.site, embedded=self.options.embedded_broker
            )
        except BrokerError as exc:
            raise DemoError(f"the MQTT broker did not start: {exc}") from exc
        if note:
            self.say(note)
        # Listed with the children so "what it ran" names it; stopped by the broker object.
        assert self.broker.proc is not None
        argv, proc = self.broker.argv, self.broker.proc
        self.processes.children.insert(
            0, Child(name="broker", argv=argv, proc=proc, log=self.broker.log_path)
        )

    def prepare_central(self) -> None:
        from parkgrid.demo_history import town_clock_env

        town_clock_env(self.run_dir)  # central shows and forecasts on the town's clock
        db = f"sqlite:///{self.run_dir / 'central.db'}"
        self.database_url = db
        run_checked(
            parkgrid_argv("central", "add-user", DEMO_USER, "--role", "admin",
                          "--password-stdin", "--database-url", db),
            stdin=self.password + "\n",
            what="parkgrid central add-user",
        )  # fmt: skip
        # One machine token per camera, named by its id (central knows a camera by its token).
        from central.auth.models import Role
        from central.auth.service import issue_token
        from central.db.engine import make_engine

        engine = make_engine(db)
        try:
            for camera_id in self.site.cameras:
                token, _ = issue_token(
                    engine, name=camera_id, role=Role.CAMERA, ttl_s=2 * 86400, actor="demo"
                )
                self.camera_tokens[camera_id] = token
        finally:
            engine.dispose()

    def start_central(self) -> Child:
        return self.processes.start(
            "central",
            parkgrid_argv(
                "central", "serve", "--site", str(self.options.site),
                "--database-url", self.database_url, "--mqtt-url", self.broker_url,
                "--host", self.options.host, "--port", str(self.options.port),
                "--instance", "demo", "--log-level", "warning",
                # The town's clock is simulated (it starts yesterday and runs --speed times
                # faster), so its cameras' times are far from the wall clock by design.
                "--camera-clock-skew-minutes", str(DEMO_CAMERA_SKEW_MINUTES),
            ),
            env=self.access.central_env(),
        )  # fmt: skip

    async def login(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(
                f"{self.url}/api/v1/auth/login",
                data={"username": DEMO_USER, "password": self.password},
            )
            response.raise_for_status()
            self.user_token = response.json()["access_token"]

    async def run(self) -> int:
        import tomli_w

        from simulators.cameras import CameraPoster
        from simulators.concentrator import ConcentratorSimulator
        from simulators.signs import SignSimulator
        from simulators.town import (
            BoxNetwork,
            default_start,
            plan_town,
            sensor_plan,
        )
        from simulators.town_driver import NetworkCut, TownDriver

        options = self.options
        site = self.site
        speed = options.speed
        self.start_broker()
        self.prepare_central()
        central = self.start_central()
        self.write_state(phase="starting")

        # The plan: from --start (04:30) yesterday, as long as the run (a day when it has no
        # end); drivers read the live signs; the faults strike in the peaks.
        sim_start = default_start(site, at=options.start)
        sim_hours = (options.duration * speed / 3600 + 0.5) if options.duration else 24.0
        outage_wall = min(60.0, max(10.0, 1800.0 / speed))
        events = plan_town(
            site, seed=options.seed, start=sim_start, hours=sim_hours, outage_s=outage_wall * speed,
            demand=dict.fromkeys(site.lots, options.demand), drivers="signs", box_restarts=True,
        )  # fmt: skip
        sensors = sensor_plan(site)
        from parkgrid.demo_history import demo_town_clock, start_demo_history

        self.clock = clock = demo_town_clock(
            sim_start, speed=speed, wall_now=time.time(), allowance_s=STARTUP_ALLOWANCE_S
        )
        wall_start = clock.wall_start

        async with contextlib.AsyncExitStack() as stack:
            concs: dict[str, Any] = {}
            sign_sims: dict[str, Any] = {}
            sign_units: dict[str, tuple[str, int]] = {}
            dev = self.run_dir / "dev"
            (self.run_dir / "signs").mkdir(exist_ok=True)
            for box_id in site.boxes:
                box_sensors: dict[int | str, str] = {
                    p.sensor_id: p.fmt for p in sensors.values() if p.box_id == box_id
                }
                concs[box_id] = await stack.enter_async_context(
                    ConcentratorSimulator(
                        sensors=box_sensors, link=dev / f"ttyCONC-{box_id}", seed=options.seed
                    )
                )
                units: dict[int, str] = {}
                for sign_id, sign in site.signs.items():
                    if sign.box_id == box_id:
                        unit = len(units) + 1
                        units[unit] = (
                            "parkgrid-guidance"
                            if sign.kind.value == "guidance"
                            else "parkgrid-warning"
                        )
                        sign_units[sign_id] = (box_id, unit)
                if units:
                    names = {u: s for s, (b, u) in sign_units.items() if b == box_id}
                    sign_sims[box_id] = await stack.enter_async_context(
                        SignSimulator(
                            units=units,
                            tcp=("127.0.0.1", 0),
                            state_file=self.run_dir / "signs" / f"{box_id}.json",
                            display_log=self.run_dir / "signs" / f"{box_id}-display.jsonl",
                            names=names,
                        )
                    )
            broker_host, broker_port = _host_port(self.broker_url)
            networks: dict[str, NetworkCut] = {}
            for event in events:
                if isinstance(event, BoxNetwork) and event.box_id not in networks:
                    relay = NetworkCut(target_host=broker_host, target_port=broker_port)
                    networks[event.box_id] = await relay.start()
                    stack.push_async_callback(relay.close)
            mqtt_urls = {
                box_id: (
                    f"mqtt://127.0.0.1:{networks[box_id].port}"
                    if box_id in networks
                    else self.broker_url
                )
                for box_id in site.boxes
            }
            health_ports = {box_id: free_port() for box_id in site.boxes}
            configs = box_configs(
                site=site,
                sensors=sensors,
                run_dir=self.run_dir,
                mqtt_urls=mqtt_urls,
                box_dirs={box_id: self.box_dir(box_id) for box_id in site.boxes},
                conc_paths={b: c.path for b, c in concs.items()},
                sign_ports={b: s.port for b, s in sign_sims.items()},
                sign_units=sign_units,
                health_ports=health_ports,
                clock=clock,
                sim_to=sim_start + sim_hours * 3600,
            )
            boxes: dict[str, Child] = {}
            for box_id, config in configs.items():
                path = self.run_dir / "boxes" / box_id / "edge.toml"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(tomli_w.dumps(config))
                boxes[box_id] = self.processes.start(
                    box_id,
                    parkgrid_argv("edge", "run", "--config", str(path), "--log-level", "WARNING"),
                )
            self.write_state(phase="starting")
            await _wait_http(f"{self.url}/healthz", within=90, child=central)
            # The history is one write transaction: started once central has set up its store
            # (a loaded machine took 41 s, beyond SQLite's 30 s busy wait of central's start),
            # and done before the demo logs in (a login writes).
            history = start_demo_history(
                site, self.database_url, clock, seed=options.seed, say=self.say
            )
            for box_id, child in boxes.items():
                await _wait_http(
                    f"http://127.0.0.1:{health_ports[box_id]}/healthz", within=90, child=child
                )
            await history
            await self.login()

            import httpx

            client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            poster = CameraPoster(
                site=site, base_url=self.url, tokens=self.camera_tokens, client=client
            )
            self.driver = driver = TownDriver(
                site=site,
                events=events,
                clock=clock,
                sensors=sensors,
                concentrators=concs,
                signs={s: (sign_sims[b], u) for s, (b, u) in sign_units.items()},
                networks=networks,
                capture=poster.post,
                heartbeat_interval_s=heartbeat_wall_s(speed)[0],
                timeline=self.run_dir / "truth-timeline.jsonl",
                restart_box=self.restart_box,
                seed=options.seed,
            )
            await driver.send_initial_state()
            self.write_state(
                phase="running", sim_start=sim_start, wall_start=wall_start, speed=speed
            )
            self.print_banner()
            until = clock.sim(wall_start + options.duration) if options.duration else None
            town = asyncio.create_task(driver.run(until_sim=until), name="town")
            summary = asyncio.create_task(self.summary_loop(), name="summary")
            stop = asyncio.create_task(self.stop_requested.wait(), name="stop")
            await asyncio.wait({town, stop}, return_when=asyncio.FIRST_COMPLETED)
            finished = town.done() and not town.cancelled()
            town.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await town
            if finished and town.exception() is not None:
                raise town.exception()  # type: ignore[misc]
            self.write_truth(finished=finished)
            if finished and options.hold and not self.stop_requested.is_set():
                self.say("the town has stopped; everything stays up until Ctrl-C (--hold)")
                self.write_state(phase="holding")
                await self.stop_requested.wait()
            summary.cancel()
            stop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await summary
            await self.final_summary()
        return EXIT_OK

    async def restart_box(self, box_id: str) -> None:
        """Stop a box's process (SIGTERM, as systemd would) and start it again."""
        child = next(c for c in reversed(self.processes.children) if c.name == box_id)
        await asyncio.to_thread(self.processes.stop, child)
        self.processes.start(box_id, child.argv)
        self.write_state(phase="running")

    def write_truth(self, *, finished: bool) -> None:
        assert self.driver is not None
        truth = self.driver.truth
        dead = sorted(truth.dead)
        record = {
            "finished": finished,
            "sim_time": self.clock.sim(time.time()),
            "lots": truth.lot_figures(),
            "zones_occupied": truth.zone_occupied(),
            "dead_bays": dead,
            "stats": vars(self.driver.stats)
            if hasattr(self.driver.stats, "__dict__")
            else {k: getattr(self.driver.stats, k) for k in self.driver.stats.__slots__},
            "events_played": self.driver.position,
            "events_planned": len(self.driver.events),
            "drivers": asdict(self.driver.followers.tally),
        }
        (self.run_dir / "truth.json").write_text(json.dumps(record, ensure_ascii=False, indent=2))


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.partition(":")
    return host, int(port or 1883)


def run_demo(options: Options) -> int:
    if port_busy(options.host, options.port):
        held = {}
        with contextlib.suppress(OSError, ValueError):
            held = json.loads(lock_path().read_text())
        if held.get("pid") and alive(int(held["pid"])):
            print(f"parkgrid demo: a demo is already running (pid {held['pid']}) at "
                  f"{held.get('url')}.", file=sys.stderr)  # fmt: skip
        else:
            print(
                f"parkgrid demo: port {options.port} on {options.host} is busy (another "
                "program listens there); choose another with --port.",
                file=sys.stderr,
            )
        return EXIT_FAILED
    demo = Demo(options)
    try:
        with demo_lock(url=demo.url, run_dir=demo.run_dir):
            return _run_with_signals(demo)
    except DemoError as exc:
        print(f"parkgrid demo: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _run_with_signals(demo: Demo) -> int:
    code = EXIT_FAILED

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, demo.stop_requested.set)
        return await demo.run()

    try:
        code = asyncio.run(main())
    except DemoError as exc:
        print(f"parkgrid demo: {exc}", file=sys.stderr)
    finally:
        ran = demo.processes.stop_all()
        if demo.broker is not None:
            demo.broker.stop()
        demo.say("stopped. It ran:")
        for name, pid, rc in ran:
            demo.say(f"  {name:<22} pid {pid:<7} {exit_words(rc)}")
        demo.say(f"logs, configs and the database are in {demo.run_dir}")
        with contextlib.suppress(OSError):
            demo.write_state(
                phase="stopped", ran=[{"name": n, "pid": p, "exit": r} for n, p, r in ran]
            )
    return code


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per second (60)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="stop after this many wall-clock seconds (the town covers duration x speed "
        "seconds of its day); default: run the whole day, until Ctrl-C",
    )
    parser.add_argument(
        "--demand",
        type=float,
        default=DEFAULT_DEMAND,
        help=f"arrivals as a factor of a quiet day ({DEFAULT_DEMAND:g}: the morning and evening "
        "peaks fill the lots and their signs send drivers on; 1: a quiet day)",
    )
    parser.add_argument(
        "--start", default="04:30", help="the town's time of day the run starts at (04:30)"
    )
    parser.add_argument("--seed", type=int, default=7, help="the town's random seed (7)")
    parser.add_argument(
        "--broker", help="use this MQTT broker (mqtt://host:port) instead of starting one"
    )
    parser.add_argument(
        "--embedded-broker",
        action="store_true",
        help="start the pure-Python broker (amqtt) even when mosquitto is installed",
    )
    parser.add_argument("--port", type=int, default=8000, help="central's HTTP port (8000)")
    parser.add_argument("--host", default="127.0.0.1", help="central's HTTP address")
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE, help="the site file")
    parser.add_argument(
        "--run-dir", type=Path, help="keep the run's files here (default: a temporary folder)"
    )
    parser.add_argument("--headless", action="store_true", help="plain log lines, no live table")
    parser.add_argument(
        "--hold",
        action="store_true",
        help="after --duration, keep everything up (town stopped) until Ctrl-C",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        print("parkgrid demo: --speed must be above 0", file=sys.stderr)
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print("parkgrid demo: --duration must be above 0", file=sys.stderr)
        return EXIT_USAGE
    if args.demand <= 0:
        print("parkgrid demo: --demand must be above 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        dt.datetime.strptime(args.start, "%H:%M")
    except ValueError:
        print(f"parkgrid demo: --start {args.start!r} is not HH:MM", file=sys.stderr)
        return EXIT_USAGE
    options = Options(
        site=args.site,
        speed=args.speed,
        duration=args.duration,
        seed=args.seed,
        broker=args.broker,
        port=args.port,
        host=args.host,
        run_dir=args.run_dir,
        headless=args.headless,
        hold=args.hold,
        embedded_broker=args.embedded_broker,
        demand=args.demand,
        start=args.start,
    )
    from site_model.site import SiteError

    try:
        return run_demo(options)
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
