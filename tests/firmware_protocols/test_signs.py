"""Sign profiles: display -> writes -> registers -> display, merging, range errors, identify."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.signs import (
    BAUD_CODES,
    GENERIC_LED,
    MAX_WRITE_REGISTERS,
    MODEL_GUIDANCE,
    MODEL_WARNING,
    PARKGRID_GUIDANCE,
    PARKGRID_WARNING,
    PROFILES,
    Access,
    Arrow,
    Colour,
    Display,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    SignProfile,
    Table,
    WarningDisplay,
    WriteBlock,
    custom_text_writes,
    decode_display,
    decode_status,
    encode_display,
    encode_fault_bits,
    guidance_text,
    identify,
    looks_like_generic_led,
    merge_writes,
    power_on_registers,
    profile,
    shown_text,
    watchdog_timeout_write,
    watchdog_write,
)


def apply(registers: dict[int, int], writes: list[WriteBlock]) -> dict[int, int]:
    out = dict(registers)
    for address, values in writes:
        out.update(zip(range(address, address + len(values)), values, strict=True))
    return out


def round_trip(prof: SignProfile, display: Display) -> Display:
    holding = power_on_registers(prof)[Table.HOLDING]
    return decode_display(prof, apply(holding, encode_display(prof, display)))


labels = st.text(alphabet=string.ascii_letters + string.digits + " -", max_size=8).map(str.strip)


@given(
    free=st.integers(0, 9999),
    colour=st.sampled_from(Colour),
    arrow=st.sampled_from(Arrow),
    mode=st.sampled_from(GuidanceMode),
    brightness=st.integers(0, 100),
    label=labels,
)
def test_guidance_round_trip(
    free: int, colour: Colour, arrow: Arrow, mode: GuidanceMode, brightness: int, label: str
) -> None:
    """Every guidance display comes back unchanged from its register writes."""
    display = GuidanceDisplay(
        free=free, colour=colour, arrow=arrow, mode=mode, brightness=brightness, label=label
    )
    assert round_trip(PARKGRID_GUIDANCE, display) == display


@given(message=st.sampled_from(Message), flashing=st.booleans(), brightness=st.integers(0, 100))
def test_warning_round_trip(message: Message, flashing: bool, brightness: int) -> None:
    """Every warning display comes back unchanged from its register writes."""
    display = WarningDisplay(message=message, flashing=flashing, brightness=brightness)
    assert round_trip(PARKGRID_WARNING, display) == display


@given(value=st.integers(-999, 9999), decimals=st.integers(0, 3))
def test_generic_led_value_round_trip(value: int, decimals: int) -> None:
    """A number with its decimal point comes back unchanged, whatever text was shown before."""
    display = NumericDisplay(value=value, decimals=decimals)
    assert round_trip(GENERIC_LED, display) == display


@given(text=st.text(alphabet=string.printable[:95], min_size=1, max_size=16))
def test_generic_led_text_round_trip(text: str) -> None:
    """Raw 7-segment text (two characters per register) comes back unchanged."""
    assert round_trip(GENERIC_LED, NumericDisplay(text=text)) == NumericDisplay(text=text)


def test_generic_led_text_high_byte_first() -> None:
    """Text goes to 0x0080 onward, first character in the high byte, NUL-padded."""
    writes = encode_display(GENERIC_LED, NumericDisplay(text="P1 FULL"))
    assert writes == [WriteBlock(0x0080, (0x5031, 0x2046, 0x554C, 0x4C00, 0, 0, 0, 0))]


def test_generic_led_value_clears_text() -> None:
    """Showing a value writes 0x0000, 0x0004 and blanks the text area, so the value shows."""
    writes = encode_display(GENERIC_LED, NumericDisplay(value=375, decimals=1))
    assert writes == [
        WriteBlock(0x0000, (375,)),
        WriteBlock(0x0004, (1,)),
        WriteBlock(0x0080, (0,) * 8),
    ]
    holding = apply(power_on_registers(GENERIC_LED)[Table.HOLDING], writes)
    assert shown_text(GENERIC_LED, holding) == "37.5"


def test_generic_led_register_map() -> None:
    """The generic module's documented addresses and baud codes are what the profile says."""
    addresses = {r.name: r.address for r in GENERIC_LED.registers}
    assert addresses == {
        "value": 0x0000,
        "unit_id": 0x0002,
        "baud_code": 0x0003,
        "decimal_point": 0x0004,
        "text": 0x0080,
    }
    assert BAUD_CODES[4] == 9600 and BAUD_CODES[8] == 115200 and len(BAUD_CODES) == 8
    assert GENERIC_LED.watchdog is None and GENERIC_LED.model_code is None


def test_guidance_count_above_9999_shows_9999() -> None:
    """Counts beyond four digits are clamped to 9999, not refused."""
    shown = round_trip(PARKGRID_GUIDANCE, GuidanceDisplay(free=12_000))
    assert isinstance(shown, GuidanceDisplay) and shown.free == 9999


def test_guidance_display_and_watchdog_merge_into_one_write() -> None:
    """Display registers and the watchdog kick are contiguous: one function-16 request."""
    writes = merge_writes(
        [
            *encode_display(PARKGRID_GUIDANCE, GuidanceDisplay(free=37, label="P1")),
            watchdog_write(PARKGRID_GUIDANCE, 7),
        ]
    )
    assert len(writes) == 1
    assert writes[0].address == 0 and len(writes[0].values) == 10 and writes[0].values[-1] == 7


def test_merge_writes_later_values_win_and_gaps_split() -> None:
    """Overlapping writes keep the latest value; a gap starts a new block."""
    merged = merge_writes(
        [
            WriteBlock(0, (1, 2, 3)),
            WriteBlock(2, (30, 40)),
            WriteBlock(10, (5,)),
            WriteBlock(1, (20,)),
        ]
    )
    assert merged == [WriteBlock(0, (1, 20, 30, 40)), WriteBlock(10, (5,))]


def test_merge_writes_splits_at_the_function_16_limit() -> None:
    """No block carries more than 123 registers."""
    merged = merge_writes([WriteBlock(0, tuple(range(300)))])
    assert [len(b.values) for b in merged] == [MAX_WRITE_REGISTERS, MAX_WRITE_REGISTERS, 54]
    assert [b.address for b in merged] == [0, 123, 246]


@pytest.mark.parametrize(
    ("prof", "display", "needle"),
    [
        pytest.param(PARKGRID_GUIDANCE, GuidanceDisplay(free=-1), "negative", id="free-negative"),
        pytest.param(
            PARKGRID_GUIDANCE,
            GuidanceDisplay(free=1, brightness=101),
            "brightness",
            id="brightness-over-100",
        ),
        pytest.param(
            PARKGRID_GUIDANCE,
            GuidanceDisplay(free=1, label="TOOLONG99"),
            "label",
            id="label-too-long",
        ),
        pytest.param(
            PARKGRID_GUIDANCE, GuidanceDisplay(free=1, label="满"), "label", id="label-not-ascii"
        ),
        pytest.param(
            PARKGRID_WARNING,
            WarningDisplay(message=Message.TRUCK_BAN, brightness=-1),
            "brightness",
            id="warning-brightness-negative",
        ),
        pytest.param(GENERIC_LED, NumericDisplay(value=10_000), "value", id="value-5-digits"),
        pytest.param(GENERIC_LED, NumericDisplay(value=-1000), "value", id="value-too-negative"),
        pytest.param(GENERIC_LED, NumericDisplay(value=1, decimals=4), "decimals", id="decimals"),
        pytest.param(GENERIC_LED, NumericDisplay(), "neither", id="nothing-to-show"),
        pytest.param(GENERIC_LED, NumericDisplay(value=1, text="1"), "not both", id="both"),
        pytest.param(GENERIC_LED, NumericDisplay(text="x" * 17), "text", id="text-too-long"),
        pytest.param(GENERIC_LED, NumericDisplay(text="a\tb"), "unprintable", id="text-tab"),
        pytest.param(GENERIC_LED, GuidanceDisplay(free=1), "NumericDisplay", id="wrong-display"),
    ],
)
def test_encode_display_range_errors(prof: SignProfile, display: Display, needle: str) -> None:
    """Values a register cannot carry raise EncodeError naming the field."""
    with pytest.raises(EncodeError) as info:
        encode_display(prof, display)
    assert needle in info.value.reason
    assert info.value.fmt == "sign-profile"


@pytest.mark.parametrize(
    ("prof", "patch", "needle"),
    [
        pytest.param(PARKGRID_GUIDANCE, {0x0001: 7}, "colour", id="colour-unknown"),
        pytest.param(PARKGRID_GUIDANCE, {0x0002: 9}, "arrow", id="arrow-unknown"),
        pytest.param(PARKGRID_GUIDANCE, {0x0000: 10_000}, "free", id="free-over-9999"),
        pytest.param(PARKGRID_GUIDANCE, {0x0005: 0x00FF}, "label", id="label-nul-first"),
        pytest.param(PARKGRID_WARNING, {0x0000: 6}, "Message", id="message-unknown"),
        pytest.param(GENERIC_LED, {0x0080: 0xC3A9}, "text", id="text-not-ascii"),
    ],
)
def test_decode_display_rejects_garbage(
    prof: SignProfile, patch: dict[int, int], needle: str
) -> None:
    """Register values no display state maps to raise DecodeError naming the field."""
    holding = power_on_registers(prof)[Table.HOLDING] | patch
    with pytest.raises(DecodeError) as info:
        decode_display(prof, holding)
    assert needle in info.value.reason


def test_decode_display_missing_register() -> None:
    """A read that left out a display register names the missing address."""
    holding = power_on_registers(PARKGRID_GUIDANCE)[Table.HOLDING]
    del holding[0x0003]
    with pytest.raises(DecodeError, match="0x0003 missing"):
        decode_display(PARKGRID_GUIDANCE, holding)


@pytest.mark.parametrize("prof", [PARKGRID_GUIDANCE, PARKGRID_WARNING], ids=lambda p: p.name)
def test_decode_status_fault_names_firmware_uptime(prof: SignProfile) -> None:
    """Input registers read back as fault names, dotted firmware and a u32 uptime."""
    inputs = power_on_registers(prof)[Table.INPUT]
    uptime = 0x0001_2345
    inputs |= {
        0x0002: uptime >> 16,
        0x0003: uptime & 0xFFFF,
        0x0004: encode_fault_bits(prof, {"power", "watchdog_expired"}),
        0x0005: (-52) & 0xFFFF,
    }
    status = decode_status(prof, inputs)
    assert status.faults == {"power", "watchdog_expired"}
    assert status.uptime_s == uptime
    assert status.firmware == "1.0"
    assert status.temperature_c == -5.2
    assert identify(status.model_code) is prof


def test_decode_status_wrong_model_and_no_status() -> None:
    """A warning sign's inputs are not a guidance sign's; the generic module has no status."""
    with pytest.raises(DecodeError, match="not parkgrid-guidance"):
        decode_status(PARKGRID_GUIDANCE, power_on_registers(PARKGRID_WARNING)[Table.INPUT])
    with pytest.raises(DecodeError, match="no status"):
        decode_status(GENERIC_LED, {})


def test_identify_known_and_unknown_codes() -> None:
    """Model codes name their profiles; an unknown code is a DecodeError carrying it."""
    assert identify(MODEL_GUIDANCE) is PARKGRID_GUIDANCE
    assert identify(MODEL_WARNING) is PARKGRID_WARNING
    with pytest.raises(DecodeError) as info:
        identify(0x1234)
    assert info.value.data == b"\x12\x34"


def test_watchdog_writes() -> None:
    """The kick wraps at 16 bits; the timeout is range-checked; generic-led has none."""
    assert watchdog_write(PARKGRID_GUIDANCE, 0x1_0005) == WriteBlock(0x0009, (5,))
    assert watchdog_write(PARKGRID_WARNING, 1) == WriteBlock(0x0003, (1,))
    assert watchdog_timeout_write(PARKGRID_GUIDANCE, 10) == WriteBlock(0x000A, (10,))
    with pytest.raises(EncodeError, match="watchdog_timeout"):
        watchdog_timeout_write(PARKGRID_GUIDANCE, 3601)
    with pytest.raises(EncodeError, match="no watchdog"):
        watchdog_write(GENERIC_LED, 1)


def test_custom_text_slot_is_shown() -> None:
    """A custom slot's UTF-8 text is what the warning sign shows for that message."""
    holding = power_on_registers(PARKGRID_WARNING)[Table.HOLDING]
    holding = apply(
        holding, custom_text_writes(PARKGRID_WARNING, Message.CUSTOM_2, "集市日 MARKET")
    )
    writes = encode_display(
        PARKGRID_WARNING, WarningDisplay(message=Message.CUSTOM_2, flashing=True)
    )
    holding = apply(holding, writes)
    assert shown_text(PARKGRID_WARNING, holding) == "集市日 MARKET (flashing)"
    with pytest.raises(EncodeError):
        custom_text_writes(PARKGRID_WARNING, Message.CUSTOM_1, "x" * 33)


@pytest.mark.parametrize(
    ("display", "faults", "text"),
    [
        pytest.param(
            GuidanceDisplay(free=37, arrow=Arrow.RIGHT, label="P1"),
            set(),
            "P1 37 → green",
            id="normal",
        ),
        pytest.param(
            GuidanceDisplay(
                free=12, mode=GuidanceMode.FULL, colour=Colour.GREEN, arrow=Arrow.LEFT, label="P2"
            ),
            set(),
            "满 FULL ← P2 12 green",
            id="full-with-fallback",
        ),
        pytest.param(
            GuidanceDisplay(free=0, mode=GuidanceMode.FULL, colour=Colour.RED),
            set(),
            "满 FULL red",
            id="full-nowhere-to-go",
        ),
        pytest.param(GuidanceDisplay(free=0, mode=GuidanceMode.UNKNOWN), set(), "--", id="unknown"),
        pytest.param(
            GuidanceDisplay(free=5, mode=GuidanceMode.CLOSED, colour=Colour.RED, arrow=Arrow.AHEAD),
            set(),
            "CLOSED red",
            id="closed-no-arrow",
        ),
        pytest.param(GuidanceDisplay(free=5, mode=GuidanceMode.BLANK), set(), "", id="blank"),
        pytest.param(GuidanceDisplay(free=5, brightness=0), set(), "", id="dark"),
        pytest.param(GuidanceDisplay(free=5), {"watchdog_expired"}, "--", id="orphaned"),
        pytest.param(GuidanceDisplay(free=5), {"led_module"}, "5 green", id="other-fault"),
    ],
)
def test_shown_text_guidance(display: GuidanceDisplay, faults: set[str], text: str) -> None:
    """The guidance sign's words follow mode, brightness and the watchdog bit."""
    tables = power_on_registers(PARKGRID_GUIDANCE)
    holding = apply(tables[Table.HOLDING], encode_display(PARKGRID_GUIDANCE, display))
    inputs = tables[Table.INPUT] | {0x0004: encode_fault_bits(PARKGRID_GUIDANCE, faults)}
    assert shown_text(PARKGRID_GUIDANCE, holding, inputs) == text


def test_power_on_state_shows_defaults() -> None:
    """After power-on the generic module shows '----' and the parkgrid signs are blank."""
    for prof, text in ((GENERIC_LED, "----"), (PARKGRID_GUIDANCE, ""), (PARKGRID_WARNING, "")):
        tables = power_on_registers(prof)
        assert shown_text(prof, tables[Table.HOLDING]) == text


def test_registry_profiles_are_consistent() -> None:
    """Every profile: registers do not overlap, input registers are read-only, names resolve."""
    assert set(PROFILES) == {"generic-led", "parkgrid-guidance", "parkgrid-warning"}
    for name, prof in PROFILES.items():
        assert profile(name) is prof
        for table in Table:
            used: list[int] = [a for r in prof.table(table) for a in r.addresses]
            assert len(used) == len(set(used)), f"{name} {table} registers overlap"
        assert all(r.access is Access.R for r in prof.table(Table.INPUT))
        for field_name in prof.display_fields:
            assert prof.register(field_name).table is Table.HOLDING
    with pytest.raises(EncodeError, match="known"):
        profile("no-such-sign")


def test_looks_like_generic_led() -> None:
    """A unit holding its own id at 0x0002 and a valid baud code passes; others do not."""
    holding = power_on_registers(GENERIC_LED)[Table.HOLDING]
    assert looks_like_generic_led(1, holding)
    assert not looks_like_generic_led(2, holding)
    assert not looks_like_generic_led(1, holding | {0x0003: 9})
    assert not looks_like_generic_led(1, {})


def test_full_sign_never_reads_as_the_fallback_is_full() -> None:
    """Finding 1: a full lot's sign names where to go and how much space is there.

    The words for full come first, then the direction, the fallback's label and its count;
    the label is never next to the words for full with nothing after it."""
    display = GuidanceDisplay(
        free=12, mode=GuidanceMode.FULL, colour=Colour.GREEN, arrow=Arrow.RIGHT, label="P4"
    )
    holding = apply(
        power_on_registers(PARKGRID_GUIDANCE)[Table.HOLDING],
        encode_display(PARKGRID_GUIDANCE, display),
    )
    text = shown_text(PARKGRID_GUIDANCE, holding)
    assert text.startswith("满 FULL → P4 12")
    assert "P4 FULL" not in text and "P4 满" not in text
    assert guidance_text(display) == "满 FULL → P4 12"


def test_guidance_unknown_mode_round_trips() -> None:
    """The unknown mode ("--") is a register value the sign accepts and reads back."""
    display = GuidanceDisplay(free=0, mode=GuidanceMode.UNKNOWN, colour=Colour.AMBER)
    holding = apply(
        power_on_registers(PARKGRID_GUIDANCE)[Table.HOLDING],
        encode_display(PARKGRID_GUIDANCE, display),
    )
    assert decode_display(PARKGRID_GUIDANCE, holding) == display
