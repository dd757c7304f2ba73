"""scan-signs and sign-test against the sign simulator (Modbus TCP and RTU on a pty)."""

from __future__ import annotations

import json

from firmware_protocols.signs import GuidanceDisplay, GuidanceMode
from simulators.signs import Fault, SignSimulator
from tests.edge.commission_support import parkgrid

# The generic module stores unit id 1 at power-on, so it is recognised at address 1.
UNITS = {1: "generic-led", 3: "parkgrid-guidance", 6: "parkgrid-warning"}


async def test_scan_signs_tcp_finds_exactly_the_simulated_units() -> None:
    """Every simulated unit is found with its profile; silent addresses are not reported."""
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0)) as signs:
        ran = await parkgrid(
            "edge", "scan-signs", "--host", f"127.0.0.1:{signs.port}",
            "--units", "1-8", "--timeout", "0.1", "--json",
        )  # fmt: skip
    assert ran.code == 0, ran.err
    found = json.loads(ran.out)["found"]
    assert {f["unit"]: f["profile"] for f in found} == UNITS
    firmware = {f["unit"]: f["firmware"] for f in found}
    assert firmware == {1: None, 3: "1.0", 6: "1.0"}


async def test_scan_signs_rtu_on_a_pty_lists_units_in_words() -> None:
    """Over RTU the table names each unit's profile and firmware, and counts what it probed."""
    async with SignSimulator(units={2: "parkgrid-guidance"}, rtu=True) as signs:
        assert signs.pty_path is not None
        ran = await parkgrid(
            "edge", "scan-signs", "--port", signs.pty_path, "--units", "1-3", "--timeout", "0.15"
        )  # fmt: skip
    assert ran.code == 0, ran.err
    assert "unit   2  parkgrid-guidance  firmware 1.0" in ran.out
    assert "1 unit(s) answered" in ran.out and "3 probed" in ran.out


async def test_scan_signs_empty_bus_exits_1() -> None:
    """A bus where nothing answers fails, with the wiring advice."""
    async with SignSimulator(units={9: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs:
        ran = await parkgrid(
            "edge", "scan-signs", "--host", f"127.0.0.1:{signs.port}",
            "--units", "1-2", "--timeout", "0.1",
        )  # fmt: skip
    assert ran.code == 1
    assert "A/B" in ran.err


async def test_scan_signs_bad_range_exits_2() -> None:
    """A unit range outside 1..247 is bad input."""
    ran = await parkgrid("edge", "scan-signs", "--host", "127.0.0.1:1", "--units", "0-300")
    assert ran.code == 2 and "1..247" in ran.err


async def test_sign_test_confirms_every_pattern_and_leaves_the_sign_blank() -> None:
    """Each guidance pattern reads back as written, and the sign ends blank."""
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0)) as signs:
        ran = await parkgrid(
            "edge", "sign-test", "--host", f"127.0.0.1:{signs.port}", "--unit", "3",
            "--hold-s", "0",
        )  # fmt: skip
        shown_after = signs.display(3)
        generic = await parkgrid(
            "edge", "sign-test", "--host", f"127.0.0.1:{signs.port}", "--unit", "1",
            "--hold-s", "0",
        )  # fmt: skip
    assert ran.code == 0, ran.out + ran.err
    for name in ("colour red", "arrow left", "arrow right", "mode full", "mode closed"):
        assert f"PASS  {name}" in ran.out
    assert "FAIL" not in ran.out
    assert "12 of 12 pattern(s) confirmed" in ran.out
    assert shown_after == GuidanceDisplay(free=0, mode=GuidanceMode.BLANK)
    assert generic.code == 0, generic.out + generic.err
    assert "shows: '8.8.8.8.'" in generic.out


async def test_sign_test_fails_on_a_hardware_fault_and_on_a_silent_unit() -> None:
    """A sign reporting an LED module fault fails the test; so does a unit that is silent."""
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0)) as signs:
        signs.set_hardware_faults(6, {"led_module"})
        signs.inject(3, Fault.SILENT)
        faulty = await parkgrid(
            "edge", "sign-test", "--host", f"127.0.0.1:{signs.port}", "--unit", "6",
            "--hold-s", "0",
        )  # fmt: skip
        silent = await parkgrid(
            "edge", "sign-test", "--host", f"127.0.0.1:{signs.port}", "--unit", "3",
            "--timeout", "0.2", "--hold-s", "0",
        )  # fmt: skip
    assert faulty.code == 1
    assert "hardware faults: led_module" in faulty.out
    assert silent.code == 1
    assert "no answer" in silent.err
