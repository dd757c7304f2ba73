"""The 433 MHz receivers' ASCII protocol: polls, answers, checksum and the line splitter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols import m77
from firmware_protocols.crc import ChecksumError, m77_checksum
from firmware_protocols.errors import DecodeError, EncodeError

VENDOR_EXAMPLE = b"$001,02,01,0,0,000,000*23"
ANSWER = m77.M77Answer(
    host_id=17, channel=5, detector_id=42, state="occupied", battery=7, threshold=120, delay_ms=350
)


def test_parse_answer_vendor_example() -> None:
    """The vendor's own example parses: its checksum 0x23 is 0xFF minus the low sum byte."""
    assert m77_checksum(VENDOR_EXAMPLE[1:22]) == 0x23
    assert sum(VENDOR_EXAMPLE[1:22]) & 0xFF == 0xDC
    assert m77.parse_answer(VENDOR_EXAMPLE) == m77.M77Answer(
        host_id=1, channel=2, detector_id=1, state="free", battery=0, threshold=0, delay_ms=0
    )


@pytest.mark.parametrize("ending", [b"", b"\r\n", b"\n"], ids=["bare", "crlf", "lf"])
def test_parse_answer_accepts_line_endings(ending: bytes) -> None:
    """An answer parses with or without its line end."""
    assert m77.parse_answer(VENDOR_EXAMPLE + ending).host_id == 1


def test_parse_answer_lower_case_checksum() -> None:
    """The checksum's hex digits are read in either case."""
    line = m77.encode_answer(ANSWER).rstrip()
    assert m77.parse_answer(line.lower()) == ANSWER


@pytest.mark.parametrize(("digit", "state"), [(b"0", "free"), (b"1", "occupied"), (b"2", "fault")])
def test_parse_answer_states(digit: bytes, state: str) -> None:
    """State digits 0, 1, 2 read as free, occupied, fault."""
    body = b"001,02,01," + digit + b",9,500,123"
    line = b"$%s*%02X" % (body, m77_checksum(body))
    answer = m77.parse_answer(line)
    assert answer.state == state
    assert (answer.battery, answer.threshold, answer.delay_ms) == (9, 500, 1230)


def test_answer_round_trip() -> None:
    """encode_answer then parse_answer gives the same answer, CR LF terminated on the wire."""
    line = m77.encode_answer(ANSWER)
    assert line == b"$017,05,42,1,7,120,035*%02X\r\n" % m77_checksum(b"017,05,42,1,7,120,035")
    assert m77.parse_answer(line) == ANSWER


@settings(max_examples=300)
@given(
    answer=st.builds(
        m77.M77Answer,
        host_id=st.integers(0, 999),
        channel=st.integers(0, 99),
        detector_id=st.integers(0, 99),
        state=st.sampled_from(["free", "occupied", "fault"]),
        battery=st.integers(0, 9),
        threshold=st.integers(0, 999),
        delay_ms=st.integers(0, 999).map(lambda d: d * 10),
    )
)
def test_answer_round_trip_property(answer: m77.M77Answer) -> None:
    """Every representable answer survives encode then parse."""
    assert m77.parse_answer(m77.encode_answer(answer)) == answer


def test_parse_answer_bad_checksum_raises_checksum_error() -> None:
    """A wrong checksum raises ChecksumError (a DecodeError) with the line and both codes."""
    line = VENDOR_EXAMPLE[:-2] + b"24"
    with pytest.raises(ChecksumError) as info:
        m77.parse_answer(line)
    assert isinstance(info.value, DecodeError)
    assert (info.value.expected, info.value.actual) == (0x23, 0x24)
    assert info.value.data == line
    assert info.value.fmt == "m77-ascii"


def test_parse_answer_low_byte_sum_is_refused() -> None:
    """The vendor prose's reading (plain low byte of the sum, 0xDC) is refused."""
    with pytest.raises(ChecksumError):
        m77.parse_answer(VENDOR_EXAMPLE[:-2] + b"DC")


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"001,02,01,0,0,000,000*23", id="no-dollar"),
        pytest.param(b"$001,02,01,0,0,000,000", id="no-checksum"),
        pytest.param(b"$001,02,01,0,0,000,000*2", id="one-checksum-digit"),
        pytest.param(b"$001,02,01,0,0,000,000*2G", id="checksum-not-hex"),
        pytest.param(b"$01,02,01,0,0,000,000*23", id="short-host-id"),
        pytest.param(b"$001,02,01,3,0,000,000*23", id="state-3"),
        pytest.param(b"$001,02,01,0,0,000*23", id="missing-field"),
        pytest.param(b"$001,02,01,0,0,000,000,000*23", id="extra-field"),
        pytest.param(b"$001;02;01;0;0;000;000*23", id="wrong-separator"),
        pytest.param(b" $001,02,01,0,0,000,000*23", id="leading-space"),
        pytest.param(b"$001,02,01,0,0,000,000*23\r\nX", id="trailing-after-newline"),
        pytest.param(b"$001,02,01,0,0,000,000*23\r", id="cr-without-lf"),
        pytest.param(b"$\xd9\xa1\xd9\xa2\xd9\xa3,02,01,0,0,000,000*23", id="non-ascii-digits"),
        pytest.param(b"#001,*", id="a-poll"),
    ],
)
def test_parse_answer_malformed_raises(line: bytes) -> None:
    """A line that is not shaped like an answer raises DecodeError carrying the line."""
    with pytest.raises(DecodeError) as info:
        m77.parse_answer(line)
    assert not isinstance(info.value, ChecksumError)
    assert info.value.data == line


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"host_id": 1000}, id="host-id"),
        pytest.param({"channel": 100}, id="channel"),
        pytest.param({"detector_id": -1}, id="detector-id"),
        pytest.param({"battery": 10}, id="battery"),
        pytest.param({"threshold": 1000}, id="threshold"),
        pytest.param({"delay_ms": 10_000}, id="delay-too-long"),
        pytest.param({"delay_ms": 15}, id="delay-not-10ms"),
        pytest.param({"state": "parked"}, id="state"),
    ],
)
def test_encode_answer_refuses_out_of_range(changes: dict[str, object]) -> None:
    """encode_answer raises EncodeError for a value the line cannot carry."""
    fields = {
        "host_id": 1,
        "channel": 2,
        "detector_id": 3,
        "state": "free",
        "battery": 5,
        "threshold": 100,
        "delay_ms": 0,
    }
    fields.update(changes)
    with pytest.raises(EncodeError):
        m77.encode_answer(m77.M77Answer(**fields))  # type: ignore[arg-type]


def test_encode_poll_vendor_shape() -> None:
    """A poll is '#', three digits, ',*' and CR LF."""
    assert m77.encode_poll(1) == b"#001,*\r\n"
    assert m77.encode_poll(999) == b"#999,*\r\n"


@pytest.mark.parametrize("host_id", [-1, 1000])
def test_encode_poll_refuses_host_id_out_of_range(host_id: int) -> None:
    """Host ids outside 0..999 raise EncodeError."""
    with pytest.raises(EncodeError):
        m77.encode_poll(host_id)


@pytest.mark.parametrize(
    ("line", "poll"),
    [
        pytest.param(b"#001,*", m77.M77Poll(host_id=1), id="bare"),
        pytest.param(b"#042,*\r\n", m77.M77Poll(host_id=42), id="crlf"),
        pytest.param(b"#007,*$01", m77.M77Poll(host_id=7, suffix=b"$01"), id="firmware-suffix"),
        pytest.param(b"#007,*$01\r\n", m77.M77Poll(host_id=7, suffix=b"$01"), id="suffix-crlf"),
    ],
)
def test_parse_poll_variants(line: bytes, poll: m77.M77Poll) -> None:
    """parse_poll reads the poll with or without line end and firmware suffix."""
    assert m77.parse_poll(line) == poll


@pytest.mark.parametrize("host_id", [0, 1, 500, 999])
def test_poll_round_trip(host_id: int) -> None:
    """encode_poll then parse_poll gives the host id back."""
    assert m77.parse_poll(m77.encode_poll(host_id)) == m77.M77Poll(host_id=host_id)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"#01,*", id="two-digits"),
        pytest.param(b"#001*", id="no-comma"),
        pytest.param(b"#001,", id="no-star"),
        pytest.param(b"$001,*", id="dollar-start"),
        pytest.param(b"#001,* x", id="suffix-with-space"),
    ],
)
def test_parse_poll_malformed_raises(line: bytes) -> None:
    """A line not shaped like a poll raises DecodeError carrying the line."""
    with pytest.raises(DecodeError) as info:
        m77.parse_poll(line)
    assert info.value.data == line


# --- the line splitter ---

LINE = m77.encode_answer(ANSWER)


def test_splitter_every_prefix_needs_more() -> None:
    """Every proper prefix of an answer line gives no line."""
    for cut in range(len(LINE)):
        splitter = m77.LineSplitter()
        splitter.feed(LINE[:cut])
        assert splitter.next_line() is None
        assert splitter.stats.lines == 0


def test_splitter_byte_at_a_time() -> None:
    """Fed one byte at a time, each line comes out once, right after its LF."""
    splitter = m77.LineSplitter()
    got: list[tuple[int, bytes]] = []
    data = LINE + VENDOR_EXAMPLE + b"\r\n"
    for i in range(len(data)):
        splitter.feed(data[i : i + 1])
        got.extend((i, line) for line in splitter)
    assert got == [(len(LINE) - 1, LINE[:-2]), (len(data) - 1, VENDOR_EXAMPLE)]
    assert m77.parse_answer(got[0][1]) == ANSWER


def test_splitter_several_lines_in_one_feed() -> None:
    """Lines fed together come out in order, without their line ends."""
    splitter = m77.LineSplitter()
    splitter.feed(LINE * 3 + b"#001,*\n")
    assert list(splitter) == [LINE[:-2]] * 3 + [b"#001,*"]
    assert splitter.stats.lines == 4
    assert splitter.stats.dropped_bytes == 0
    assert splitter.stats.bytes_in == 3 * len(LINE) + 7


def test_splitter_garbage_before_inside_and_after() -> None:
    """Noise before '$' is trimmed, noise lines are dropped, a corrupted line fails its checksum."""
    corrupted = LINE[:5] + b"9" + LINE[6:]
    splitter = m77.LineSplitter()
    splitter.feed(b"\x00\xff" + LINE + b"noise\r\n" + corrupted + LINE + b"\xff")
    lines = list(splitter)
    assert lines == [LINE[:-2], corrupted[:-2], LINE[:-2]]
    assert m77.parse_answer(lines[0]) == ANSWER
    with pytest.raises(ChecksumError):
        m77.parse_answer(lines[1])
    assert splitter.stats.dropped_bytes == 2 + 7
    assert splitter.buffered == 1


def test_splitter_overlong_line_dropped_and_counted() -> None:
    """A line longer than max_line is dropped whole, counted, and memory stays bounded."""
    splitter = m77.LineSplitter(max_line=40)
    for _ in range(100):
        splitter.feed(b"$" + b"9" * 29)
        assert splitter.buffered <= 40
    splitter.feed(b"tail\r\n" + LINE)
    assert list(splitter) == [LINE[:-2]]
    assert splitter.stats.overlong_lines == 1
    assert splitter.stats.dropped_bytes == 3000 + 6


def test_splitter_overlong_line_within_one_feed() -> None:
    """An overlong line that arrives whole in one feed is dropped and counted too."""
    splitter = m77.LineSplitter(max_line=40)
    splitter.feed(b"$" + b"1" * 100 + b"\r\n" + LINE)
    assert list(splitter) == [LINE[:-2]]
    assert splitter.stats.overlong_lines == 1
    assert splitter.stats.dropped_bytes == 103


def test_splitter_line_at_limit_is_kept() -> None:
    """A line of exactly max_line bytes (CR included) is delivered."""
    splitter = m77.LineSplitter(max_line=len(LINE) - 1)
    splitter.feed(LINE)
    assert list(splitter) == [LINE[:-2]]
    assert splitter.stats.overlong_lines == 0


@settings(max_examples=300)
@given(data=st.binary(max_size=1500), chunk=st.integers(1, 200))
def test_splitter_random_bytes_never_crash_and_stay_bounded(data: bytes, chunk: int) -> None:
    """Random bytes never raise; lines start at '$' or '#', and memory stays bounded."""
    splitter = m77.LineSplitter(max_line=64)
    lines: list[bytes] = []
    for i in range(0, len(data), chunk):
        splitter.feed(data[i : i + chunk])
        lines.extend(splitter)
        assert splitter.buffered <= 64
    for line in lines:
        assert line[:1] in (b"$", b"#")
        assert b"\n" not in line
        assert line in data
    assert splitter.stats.bytes_in == len(data)
    assert splitter.stats.lines == len(lines)


no_newline_noise = st.binary(max_size=30).map(lambda b: b.translate(None, b"\n$#"))


@settings(max_examples=200)
@given(
    parts=st.lists(st.tuples(no_newline_noise, st.integers(0, 999)), max_size=6),
    chunk=st.integers(1, 40),
)
def test_splitter_recovers_answers_after_noise(parts: list[tuple[bytes, int]], chunk: int) -> None:
    """Answers preceded by line noise without '$', '#' or LF all come out and parse."""
    answers = [
        m77.M77Answer(
            host_id=h, channel=1, detector_id=2, state="free", battery=3, threshold=4, delay_ms=50
        )
        for _, h in parts
    ]
    data = b"".join(
        noise + m77.encode_answer(a) for (noise, _), a in zip(parts, answers, strict=True)
    )
    splitter = m77.LineSplitter()
    got: list[m77.M77Answer] = []
    for i in range(0, len(data), chunk):
        splitter.feed(data[i : i + chunk])
        got.extend(m77.parse_answer(line) for line in splitter)
    assert got == answers
