"""``parkgrid sim concentrator``: a simulated concentrator on a pty, driven by hand if asked.

Run it::

    parkgrid sim concentrator --link /tmp/parkgrid/ttyCONC0              # 8 sensors, random cars
    parkgrid sim concentrator --link /tmp/parkgrid/ttyCONC0 --bury bays.csv \\
        --ground-out ground.csv --control /tmp/parkgrid/conc.sock --dead P1/B007

``--bury bays.csv`` puts a sensor under each bay of the file (``lot,bay[,sensor,format]``;
an empty sensor gets a new id, the formats in turn), writes what it buried to
``--ground-out`` (the answer sheet) and, unless ``--rate`` says otherwise, sends nothing on
its own: the lot is empty until told. Tell it with another terminal::

    parkgrid sim concentrator --control /tmp/parkgrid/conc.sock --send "toggle P1/B001"

(``--send`` is repeatable; the commands are in :mod:`simulators.concentrator_control`), or
type the commands on its standard input with ``--stdin``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from firmware_protocols.concentrator import FORMAT_IDS
from simulators.concentrator import ConcentratorSimulator, canonical_id, make_sensors
from simulators.concentrator_control import (
    ControlError,
    Controller,
    Ground,
    send,
    serve_socket,
    serve_stdin,
)

DEFAULT_RATE = 0.05


def _sensor_arg(text: str) -> tuple[str, str]:
    sid, sep, fmt = text.partition(":")
    if not sep or fmt not in FORMAT_IDS:
        raise argparse.ArgumentTypeError(f"use ID:FORMAT, FORMAT one of {sorted(FORMAT_IDS)}")
    try:
        return canonical_id(sid), fmt
    except ValueError:
        raise argparse.ArgumentTypeError(f"{sid!r} is not a hex sensor id") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--link",
        type=Path,
        default=Path("/tmp/parkgrid/ttyCONC0"),
        help="where to create the device symlink the box opens",
    )
    parser.add_argument("--sensors", type=int, default=None, help="N sensors, formats in turn")
    parser.add_argument(
        "--sensor",
        type=_sensor_arg,
        action="append",
        default=[],
        metavar="ID:FORMAT",
        help="one sensor (repeatable)",
    )
    parser.add_argument(
        "--bury",
        type=Path,
        help="a sensor under each bay of this CSV (lot,bay[,sensor,format]); see --ground-out",
    )
    parser.add_argument(
        "--formats",
        default=",".join(FORMAT_IDS),
        help="with --bury: the formats taken in turn for rows without one",
    )
    parser.add_argument("--ground-out", type=Path, help="with --bury: write what is where")
    parser.add_argument(
        "--dead", action="append", default=[], metavar="BAY|ID", help="a silent sensor"
    )
    parser.add_argument(
        "--control", type=Path, help="answer commands on this Unix socket (or send to it)"
    )
    parser.add_argument("--stdin", action="store_true", help="read commands from stdin")
    parser.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="COMMAND",
        help="send COMMAND to the simulator at --control and exit (repeatable)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"random uplinks per sensor per second ({DEFAULT_RATE}; 0 with --bury)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--noise", type=float, default=0.0, help="per-byte corruption chance")
    parser.add_argument(
        "--status-interval",
        type=float,
        default=30.0,
        help="seconds between concentrator status frames",
    )
    parser.set_defaults(handler=_run_cli)


def _fail(reason: str) -> int:
    print(f"sim concentrator: {reason}", file=sys.stderr)
    return 2


def _run_cli(args: argparse.Namespace) -> int:
    if args.send:
        if args.control is None:
            return _fail("--send needs --control PATH (the running simulator's socket)")
        try:
            replies = asyncio.run(send(args.control, args.send))
        except OSError as exc:
            return _fail(f"no simulator answers at {args.control}: {exc.strerror or exc}")
        for reply in replies:
            print(reply)
        return 1 if any(r.startswith("error") for r in replies) else 0
    ground = Ground()
    if args.bury:
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        unknown = [f for f in formats if f not in FORMAT_IDS]
        if unknown or not formats:
            return _fail(f"--formats: {unknown or formats} not radio formats {list(FORMAT_IDS)}")
        try:
            text = args.bury.read_text(encoding="utf-8-sig")
            ground = Ground.from_csv(text, source=str(args.bury), formats=formats)
        except OSError as exc:
            return _fail(f"cannot read {args.bury}: {exc.strerror}")
        except ControlError as exc:
            return _fail(str(exc))
        if args.ground_out:
            args.ground_out.write_text(ground.as_csv(), encoding="utf-8")
    sensors: dict[int | str, str] = dict(ground.sensors())
    sensors.update(dict(args.sensor))
    if args.sensors:
        sensors.update(make_sensors(args.sensors))
    if not sensors:
        sensors.update(make_sensors(8))
    rate = args.rate if args.rate is not None else (0.0 if args.bury else DEFAULT_RATE)
    return asyncio.run(_cli_main(args, sensors, ground, rate))


async def _cli_main(
    args: argparse.Namespace, sensors: Mapping[int | str, str], ground: Ground, rate: float
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ConcentratorSimulator(
        sensors=sensors,
        link=args.link,
        seed=args.seed,
        rate=rate,
        noise=args.noise,
        status_interval_s=args.status_interval,
    ) as sim:
        controller = Controller(sim, ground)
        for target in args.dead:
            reply = await controller.apply(f"dead {target}")
            if reply.startswith("error"):
                return _fail(f"--dead {target}: {reply}")
        for sid in sim.core.sensors:
            await sim.send_startup(sid)
        print(sim.path, flush=True)
        print(f"{len(sensors)} sensors; Ctrl-C to stop", file=sys.stderr, flush=True)
        async with contextlib.AsyncExitStack() as stack:
            if args.control:
                await stack.enter_async_context(serve_socket(controller, args.control))
                print(f"commands on {args.control}", file=sys.stderr, flush=True)
            tasks: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
            if args.stdin:
                tasks.append(asyncio.create_task(serve_stdin(controller)))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        c = sim.counts
        print(
            f"sent {c.frames_sent} frames, {c.corrupted_frames} corrupted, "
            f"{c.garbage_bytes} garbage bytes",
            file=sys.stderr,
        )
    return 0
