"""``parkgrid edge scan-signs``: which Modbus unit ids answer on a bus, and what they are.

Each unit id in ``--units`` is asked for its status input registers (model code, firmware,
faults) with a short timeout. A parkgrid sign names its profile by its model code
(``firmware_protocols.signs.identify``); a generic LED module refuses input registers and is
recognised by its own unit id and baud code in holding registers 2..3
(``looks_like_generic_led``). Silence is "no sign at this address"; any other answer is
reported as an unknown device, never guessed.

A full scan of 1..247 at 0.15 s per silent address takes about 40 s; give a narrower
``--units`` when the addresses are known.

Exit: 0 when at least one sign answered, 1 when none did (or the bus cannot be opened),
2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from edge.commission.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommissionError,
    SignProbe,
    add_bus_arguments,
    connect_from_args,
    parse_units,
    probe_sign,
)
from edge.drivers.errors import SignBusConnectionError, SignUnitTimeout
from edge.drivers.modbus_client import ModbusClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus_arguments(parser, timeout_s=0.15)
    parser.add_argument("--units", default="1-247", help="unit ids to probe, e.g. 1-16,100")
    parser.add_argument("--json", action="store_true", help="one JSON document at the end")


def run(args: argparse.Namespace) -> int:
    try:
        units = parse_units(args.units)
    except CommissionError as exc:
        print(f"scan-signs: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    return asyncio.run(_run(args, units))


async def _run(args: argparse.Namespace, units: list[int]) -> int:
    try:
        client = await connect_from_args(args, bus="scan")
    except CommissionError as exc:
        print(f"scan-signs: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    where = client.where
    try:
        found = await scan(client, units, progress=not args.json)
    except SignBusConnectionError as exc:
        print(f"scan-signs: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        client.close()
    if args.json:
        doc = {"bus": where, "units_probed": units, "found": [p.as_json() for p in found]}
        print(json.dumps(doc, ensure_ascii=False))
    else:
        known = sum(1 for p in found if p.profile)
        print(f"{len(found)} unit(s) answered on {where} ({known} known sign(s)), "
              f"{len(units)} probed")  # fmt: skip
    if not found:
        if not args.json:
            print(
                "no sign answered: check A/B polarity, termination, baud rate and parity, "
                "and that the signs are powered",
                file=sys.stderr,
            )
        return EXIT_FAILED
    return EXIT_OK


async def scan(
    client: ModbusClient, units: list[int], *, progress: bool = False
) -> list[SignProbe]:
    """Probe each unit id; the ones that answered, in unit order."""
    found: list[SignProbe] = []
    for unit in units:
        try:
            probe = await probe_sign(client, unit)
        except SignUnitTimeout:
            continue
        found.append(probe)
        if progress:
            print(describe(probe), flush=True)
    return found


def describe(probe: SignProbe) -> str:
    """One line per unit: ``unit   3  parkgrid-guidance  firmware 1.0  faults: none``."""
    if probe.profile is None:
        return f"unit {probe.unit:3d}  UNKNOWN DEVICE  {probe.note}"
    firmware = f"firmware {probe.firmware}" if probe.firmware else "firmware not reported"
    faults = ", ".join(sorted(probe.faults)) or "none"
    text = f"unit {probe.unit:3d}  {probe.profile:<18} {firmware}  faults: {faults}"
    return f"{text}  ({probe.note})" if probe.note else text
