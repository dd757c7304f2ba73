"""``parkgrid edge sign-test``: test patterns on one sign, each confirmed by reading back.

The unit is probed first (as ``scan-signs`` does) unless ``--profile`` names it; a unit that
says it is another profile than the one given is a failure, not a guess. Then, per profile:

    generic-led         all segments and points (8.8.8.8.), every digit 0..9, a decimal
    parkgrid-guidance   all segments (8888 + label), every colour, every arrow, FULL, CLOSED,
                        dimmed
    parkgrid-warning    every message of the message table, steady, then flashing

Each pattern is written (with a watchdog kick on the parkgrid profiles, so the sign does not
blank while it is being looked at), held for ``--hold-s`` so the technician can look at the
sign, and read back register by register: a pattern passes only when the sign holds exactly
what was written. The sign is left blank at the end (the box's next refresh sets it).

Exit: 0 every pattern confirmed; 1 a pattern did not read back, the unit is silent or
reports a hardware fault; 2 bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass

from edge.commission.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    STATUS_REGISTERS,
    CommissionError,
    add_bus_arguments,
    connect_from_args,
    probe_sign,
)
from edge.drivers.errors import SignBusError
from edge.drivers.modbus_client import ModbusClient
from firmware_protocols.errors import ProtocolError
from firmware_protocols.signs import (
    MESSAGE_TEXT,
    PROFILES,
    Arrow,
    Colour,
    Display,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    SignProfile,
    WarningDisplay,
    decode_display,
    decode_status,
    encode_display,
    shown_text,
    watchdog_write,
)

# Faults that mean the hardware needs a visit; watchdog_expired only means no box has
# written yet, which is normal while commissioning.
HARDWARE_FAULTS = frozenset({"led_module", "power", "over_temperature", "light_sensor"})


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    display: Display


def patterns(profile: SignProfile) -> list[Pattern]:
    """The test patterns for a profile, in the order they are shown."""
    if profile.display_type is NumericDisplay:
        return [
            Pattern("all segments and points", NumericDisplay(text="8.8.8.8.")),
            *(Pattern(f"digit {d}", NumericDisplay(text=str(d) * 4)) for d in range(10)),
            Pattern("decimal point", NumericDisplay(value=1234, decimals=2)),
        ]
    if profile.display_type is GuidanceDisplay:
        full = GuidanceDisplay(free=8888, label="8888")
        return [
            Pattern("all segments", full),
            *(
                Pattern(f"colour {c.name.lower()}", GuidanceDisplay(free=8888, colour=c))
                for c in Colour
            ),
            *(Pattern(f"arrow {a.name.lower()}", GuidanceDisplay(free=88, arrow=a)) for a in Arrow),
            Pattern("mode full", GuidanceDisplay(free=0, mode=GuidanceMode.FULL)),
            Pattern("mode closed", GuidanceDisplay(free=0, mode=GuidanceMode.CLOSED)),
            Pattern("dimmed 25 %", GuidanceDisplay(free=8888, brightness=25)),
        ]
    if profile.display_type is WarningDisplay:
        steady = [
            Pattern(f"message {m.name.lower()}", WarningDisplay(message=m))
            for m in MESSAGE_TEXT
            if m is not Message.BLANK
        ]
        return [
            *steady,
            Pattern("flashing", WarningDisplay(message=Message.NO_PARKING, flashing=True)),
        ]
    raise ValueError(f"no test patterns for {profile.name}")


def blank(profile: SignProfile) -> Display:
    """What the sign is left showing."""
    if profile.display_type is NumericDisplay:
        return NumericDisplay(text="----")
    if profile.display_type is GuidanceDisplay:
        return GuidanceDisplay(free=0, mode=GuidanceMode.BLANK)
    return WarningDisplay(message=Message.BLANK)


@dataclass(frozen=True, slots=True, kw_only=True)
class PatternResult:
    name: str
    ok: bool
    shown: str
    detail: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_bus_arguments(parser, timeout_s=0.5)
    parser.add_argument("--unit", type=int, required=True, help="the sign's Modbus unit id")
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), help="skip the probe; the unit must agree"
    )
    parser.add_argument(
        "--hold-s", type=float, default=1.5, help="seconds each pattern stays up (1.5)"
    )


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.unit <= 247:
        print("sign-test: --unit must be 1..247", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.hold_s < 0:
        print("sign-test: --hold-s cannot be negative", file=sys.stderr)
        return EXIT_BAD_INPUT
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    try:
        client = await connect_from_args(args, bus="sign-test")
    except CommissionError as exc:
        print(f"sign-test: {exc.reason}", file=sys.stderr)
        return exc.exit_code
    try:
        return await _test(client, args.unit, args.profile, args.hold_s)
    except SignBusError as exc:
        print(f"sign-test: FAIL: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        client.close()


async def _test(client: ModbusClient, unit: int, given: str | None, hold_s: float) -> int:
    probe = await probe_sign(client, unit)
    if given is not None and probe.profile not in (given, None):
        print(f"sign-test: FAIL: unit {unit} says it is {probe.profile}, not {given}")
        return EXIT_FAILED
    name = given or probe.profile
    if name is None:
        print(f"sign-test: FAIL: unit {unit} {probe.note}; give --profile if you know better")
        return EXIT_FAILED
    profile = PROFILES[name]
    print(f"unit {unit}: {profile.name} ({profile.title}); {hold_s:g} s per pattern")
    results = await run_patterns(client, unit, profile, hold_s=hold_s, report=_print_result)
    faults: frozenset[str] = frozenset()
    if profile.model_code is not None:
        inputs = await client.read_input(unit, 0, STATUS_REGISTERS)
        faults = decode_status(profile, dict(enumerate(inputs))).faults & HARDWARE_FAULTS
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} of {len(results)} pattern(s) confirmed by read-back")
    if faults:
        print(f"FAIL: the sign reports hardware faults: {', '.join(sorted(faults))}")
    return EXIT_FAILED if failed or faults else EXIT_OK


def _print_result(result: PatternResult) -> None:
    mark = "PASS" if result.ok else "FAIL"
    line = f"{mark}  {result.name:<26} shows: {result.shown!r}"
    print(f"{line}  {result.detail}" if result.detail else line, flush=True)


async def run_patterns(
    client: ModbusClient,
    unit: int,
    profile: SignProfile,
    *,
    hold_s: float,
    report: Callable[[PatternResult], None] = lambda _r: None,
) -> list[PatternResult]:
    """Show every pattern, confirm each by read-back, leave the sign blank."""
    results: list[PatternResult] = []
    steps = [*patterns(profile), Pattern("blank (left this way)", blank(profile))]
    for index, pattern in enumerate(steps):
        result = await _show(client, unit, profile, pattern, index + 1)
        results.append(result)
        report(result)
        if index < len(steps) - 1:
            await asyncio.sleep(hold_s)
    return results


async def _show(
    client: ModbusClient, unit: int, profile: SignProfile, pattern: Pattern, kick: int
) -> PatternResult:
    blocks = encode_display(profile, pattern.display)
    expected: dict[int, int] = {}
    for block in blocks:
        await client.write_registers(unit, block.address, block.values)
        expected.update((block.address + i, v) for i, v in enumerate(block.values))
    if profile.watchdog is not None:
        block = watchdog_write(profile, kick)
        await client.write_registers(unit, block.address, block.values)
    holding: dict[int, int] = {}
    for field_name in profile.display_fields:
        reg = profile.register(field_name)
        words = await client.read_holding(unit, reg.address, reg.count)
        holding.update(zip(reg.addresses, words, strict=True))
    inputs = None
    if profile.model_code is not None:
        inputs = dict(enumerate(await client.read_input(unit, 0, STATUS_REGISTERS)))
    try:
        shown = shown_text(profile, holding, inputs)
        got = decode_display(profile, holding)
    except ProtocolError as exc:
        return PatternResult(name=pattern.name, ok=False, shown="", detail=f"read back: {exc}")
    want = decode_display(profile, {**holding, **expected})
    if got != want:
        return PatternResult(
            name=pattern.name, ok=False, shown=shown, detail=f"wrote {want}, read back {got}"
        )
    if shown == "--":
        return PatternResult(
            name=pattern.name, ok=False, shown=shown, detail="the sign's watchdog blanked it"
        )
    return PatternResult(name=pattern.name, ok=True, shown=shown)
