"""``parkgrid edge listen``: every sensor heard on a serial line, as a live table or JSON lines.

The line is served by the box's own driver (:class:`edge.drivers.serial_line.SerialLine`), so
what the technician sees is what the box will hear: the same decoder, the same counters.
With ``--config`` the sensors are matched to their bays and a sensor the config does not
map is shown in red as NOT MAPPED; the config's serial lines are used unless ``--port`` is
given. ``--json`` writes one JSON object per frame heard and a summary at the end.

Exit: 0 when something was heard (and, with ``--config``, every mapped sensor was heard);
1 when nothing was heard, a mapped sensor stayed silent or the line went down; 2 for a
device that does not exist or bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Mapping

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from edge.commission.common import (
    EXIT_FAILED,
    EXIT_OK,
    BadInput,
    CommissionError,
    Sighting,
    Sightings,
    check_serial_device,
    listening,
)
from edge.config import ConfigError, EdgeConfig, SerialLineConfig, load_config
from edge.drivers.serial_line import SerialLine, SerialLineStats
from edge.observations import SensorObservation

REFRESH_PER_SECOND = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", help="serial device (/dev/serial/by-id/...)")
    parser.add_argument("--protocol", choices=["concentrator", "m77-ascii"], default="concentrator")
    parser.add_argument("--baud", type=int, default=None, help="baud rate (115200; m77: 9600)")
    parser.add_argument("--parity", choices=["N", "E", "O"], default="N")
    parser.add_argument(
        "--hosts", default="1", help="m77-ascii: receiver host ids to poll, e.g. 1,2 (1)"
    )
    parser.add_argument(
        "--config", help="a box config: its serial lines, and sensor ids matched to bays"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (default: Ctrl-C)"
    )
    parser.add_argument("--json", action="store_true", help="JSON lines instead of the table")


def run(args: argparse.Namespace) -> int:
    try:
        config = _load(args.config) if args.config else None
        lines = _lines(args, config)
        for line in lines.values():
            check_serial_device(line.device, baud=line.baud)
        if args.seconds is not None and args.seconds <= 0:
            raise BadInput("--seconds must be positive")
    except CommissionError as exc:
        print(f"listen: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    mapping = _mapping(config) if config else None
    return asyncio.run(listen(lines, mapping=mapping, seconds=args.seconds, as_json=args.json))


def _load(path: str) -> EdgeConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        problems = "; ".join(str(p) for p in exc.problems[:5])
        raise BadInput(f"{exc.source}: {problems}") from None


def _lines(args: argparse.Namespace, config: EdgeConfig | None) -> dict[str, SerialLineConfig]:
    if args.port:
        hosts: list[int] = []
        if args.protocol == "m77-ascii":
            try:
                hosts = [int(h) for h in args.hosts.split(",") if h.strip()]
            except ValueError:
                raise BadInput(f"--hosts {args.hosts!r} is not a list of numbers") from None
        baud = args.baud or (9600 if args.protocol == "m77-ascii" else 115200)
        try:
            line = SerialLineConfig(
                device=args.port,
                protocol=args.protocol,
                baud=baud,
                parity=args.parity,
                receiver_hosts=hosts,
            )
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return {"port": line}
    if config is None:
        raise BadInput("give --port DEV (and --protocol), or --config FILE")
    if not config.serial:
        raise BadInput(f"{args.config} has no [serial] lines")
    return dict(config.serial)


def _mapping(config: EdgeConfig) -> dict[str, str]:
    return {bay.sensor: f"{lot_id}/{bay_id}" for lot_id, bay_id, bay in config.bays()}


async def listen(
    lines: Mapping[str, SerialLineConfig],
    *,
    mapping: Mapping[str, str] | None = None,
    seconds: float | None = None,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    """Listen until ``seconds`` pass or SIGINT/SIGTERM; print, and return the exit code."""
    console = console or Console()
    sightings = Sightings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def sink(obs: SensorObservation) -> None:
        seen = sightings.observe(obs)
        if as_json:
            record = {"type": "frame", **seen.as_json(), **_bay_fields(seen, mapping)}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            sys.stdout.flush()

    try:
        async with listening(lines, sink) as owners:
            if as_json:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), seconds)
            else:
                await _live(console, owners, sightings, mapping, stop, seconds)
            stats = [line.stats() for line in owners]
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return _summary(console, stats, sightings, mapping, as_json)


async def _live(
    console: Console,
    owners: list[SerialLine],
    sightings: Sightings,
    mapping: Mapping[str, str] | None,
    stop: asyncio.Event,
    seconds: float | None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds

    def view() -> Group:
        return render(sightings, [o.stats() for o in owners], mapping, now=time.time())

    with Live(
        view(), console=console, refresh_per_second=REFRESH_PER_SECOND, transient=False
    ) as live:
        while not stop.is_set():
            wait = 1 / REFRESH_PER_SECOND
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            live.update(view())
        live.update(view())


def _bay_fields(seen: Sighting, mapping: Mapping[str, str] | None) -> dict[str, object]:
    if mapping is None:
        return {}
    return {"bay": mapping.get(seen.sensor_id), "mapped": seen.sensor_id in mapping}


def render(
    sightings: Sightings,
    stats: list[SerialLineStats],
    mapping: Mapping[str, str] | None,
    *,
    now: float,
) -> Group:
    """The live view: one row per sensor, then one counter line per serial line."""
    table = Table(title="sensors heard", expand=False)
    # The id, format and state never wrap: those are what the technician reads.
    for column in ("sensor", "format", "state"):
        table.add_column(column, no_wrap=True)
    for column in ("battery", "°C", "RSSI", "SNR", "fcnt"):
        table.add_column(column)
    table.add_column("frames", justify="right")
    table.add_column("last seen", justify="right")
    if mapping is not None:
        table.add_column("bay")
    for seen in sorted(sightings.by_id.values(), key=lambda s: s.sensor_id):
        cells = [
            seen.sensor_id,
            seen.fmt,
            seen.state,
            seen.battery_text,
            "" if seen.temperature_c is None else f"{seen.temperature_c:.1f}",
            "" if seen.rssi_dbm is None else f"{seen.rssi_dbm}dBm",
            "" if seen.snr_db is None else f"{seen.snr_db:.1f}dB",
            "" if seen.frame_counter is None else str(seen.frame_counter),
            str(seen.frames),
            f"{max(now - seen.last_seen, 0):.0f}s ago",
        ]
        style = ""
        if mapping is not None:
            bay = mapping.get(seen.sensor_id)
            cells.append(bay or "NOT MAPPED")
            style = "" if bay else "bold red"
        table.add_row(*cells, style=style)
    footer = Text()
    for line in stats:
        state = "up" if line.up else f"DOWN ({line.down_reason})"
        footer.append(
            f"line {line.line} {line.device} [{line.protocol}] {state}: "
            f"{line.bytes_in} bytes, {line.frames} frames, {line.crc_failures} CRC failures, "
            f"{line.checksum_failures} checksum failures, {line.dropped_bytes} bytes dropped, "
            f"{line.payload_decode_errors} undecodable payloads\n",
            style="" if line.up else "bold red",
        )
    return Group(table, footer)


def _summary(
    console: Console,
    stats: list[SerialLineStats],
    sightings: Sightings,
    mapping: Mapping[str, str] | None,
    as_json: bool,
) -> int:
    problems: list[str] = []
    if not sightings.by_id:
        problems.append("no sensor was heard: check the wiring (A/B), the baud rate and power")
    for line in stats:
        if not line.up:
            problems.append(f"line {line.line} ({line.device}) is down: {line.down_reason}")
    not_heard: list[str] = []
    unmapped: list[str] = []
    if mapping is not None:
        not_heard = sorted(s for s in mapping if s not in sightings.by_id)
        unmapped = sorted(s for s in sightings.by_id if s not in mapping)
        if not_heard:
            shown = ", ".join(f"{s} ({mapping[s]})" for s in not_heard[:20])
            more = f" and {len(not_heard) - 20} more" if len(not_heard) > 20 else ""
            problems.append(f"{len(not_heard)} mapped sensor(s) not heard: {shown}{more}")
    if as_json:
        summary = {
            "type": "summary",
            "sensors_heard": len(sightings.by_id),
            "not_heard": not_heard,
            "not_mapped": unmapped,
            "lines": [
                {
                    "line": s.line,
                    "device": s.device,
                    "up": s.up,
                    "bytes": s.bytes_in,
                    "frames": s.frames,
                    "crc_failures": s.crc_failures,
                    "checksum_failures": s.checksum_failures,
                    "dropped_bytes": s.dropped_bytes,
                }
                for s in stats
            ],
            "problems": problems,
        }
        sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    else:
        console.print(f"{len(sightings.by_id)} sensor(s) heard")
        if unmapped:
            console.print(f"not in the config: {', '.join(unmapped)}", style="bold red")
        for problem in problems:
            console.print(f"FAIL: {problem}", style="bold red")
    return EXIT_FAILED if problems else EXIT_OK
