"""The 433 MHz detector receivers' ASCII poll/answer protocol (``m77-ascii``).

Theory of operation
-------------------
Receivers such as the M76R (RS-485) and M77R (RS-232) run at 9600 8N1 and each serves many
buried detectors. The box polls one receiver by its host id; the receiver answers with one
line per detector::

    poll    # H H H , * CR LF                 parkgrid sends CR LF (see below)
            | '-+-'   '- end of command
            |   '- host id, 3 decimal digits, 000..999
            '- start of a poll

    answer  $ HHH , CC , DD , S , B , TTT , LLL * KK CR LF
            |  |     |    |   |   |    |     |    |   '- optional on input
            |  |     |    |   |   |    |     |    '- checksum, 2 hex digits
            |  |     |    |   |   |    |     '- delay, units of 10 ms
            |  |     |    |   |   |    '- detection threshold
            |  |     |    |   |   '- battery level 0..9
            |  |     |    |   '- state: 0 free, 1 occupied, 2 fault
            |  |     |    '- detector id
            |  |     '- radio channel
            |  '- host id
            '- start of an answer

    KK = 0xFF - (sum of the bytes between '$' and '*') & 0xFF

The vendor's prose says "keep the low byte of the sum", but its own example
``$001,02,01,0,0,000,000*23`` (sum 0x3DC, low byte 0xDC) only checks as ``0xFF - 0xDC``:
the example is taken as the truth. Field widths are fixed, so a well-formed answer is
exactly 25 bytes before its line end. Numeric fields are read as the wire carries them
(any three digits for threshold and delay): range policy is the caller's, not the codec's.

Decisions where the vendor is silent:

- ``encode_poll`` appends CR LF. The ``*`` already ends the command for firmware that hunts
  for ``#``/``*``; firmware that waits for a line end needs the CR LF, and receivers that do
  not want it skip it while hunting for the next ``#``. ``parse_poll`` accepts the poll with
  or without a line end, and with a firmware suffix such as ``$01`` after the ``*``.
- ``LineSplitter`` splits on LF, drops a CR before it, and starts each line at its first
  ``$`` or ``#``: RS-485 turnaround leaves a stray byte (often 0x00 or 0xFF) before the
  answer, and that byte must not cost the answer. Bytes before the start character, lines
  with none, and lines longer than ``max_line`` are dropped and counted; an overlong line
  is discarded up to its LF, so memory stays bounded by ``max_line``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from firmware_protocols.crc import ChecksumError, m77_checksum
from firmware_protocols.errors import DecodeError, EncodeError

__all__ = [
    "FMT",
    "ChecksumError",
    "LineSplitter",
    "LineStats",
    "M77Answer",
    "M77Poll",
    "M77State",
    "encode_answer",
    "encode_poll",
    "parse_answer",
    "parse_poll",
]

FMT: Final = "m77-ascii"

M77State = Literal["free", "occupied", "fault"]

_STATE_BY_DIGIT: Final[dict[int, M77State]] = {0x30: "free", 0x31: "occupied", 0x32: "fault"}
_DIGIT_BY_STATE: Final[dict[str, int]] = {"free": 0, "occupied": 1, "fault": 2}

_ANSWER_RE: Final = re.compile(
    rb"\$(\d{3}),(\d{2}),(\d{2}),([012]),(\d),(\d{3}),(\d{3})\*([0-9A-Fa-f]{2})(?:\r?\n)?"
)
_POLL_RE: Final = re.compile(rb"#(\d{3}),\*([!-~]*)(?:\r?\n)?")


@dataclass(frozen=True, slots=True, kw_only=True)
class M77Answer:
    """One detector's state as a receiver reports it."""

    host_id: int
    channel: int
    detector_id: int
    state: M77State
    battery: int
    threshold: int
    delay_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class M77Poll:
    """A poll as the receiver sees it; ``suffix`` is what some firmware adds after ``*``."""

    host_id: int
    suffix: bytes = b""


def encode_poll(host_id: int) -> bytes:
    """The poll for receiver ``host_id`` (0..999), CR LF terminated."""
    if not 0 <= host_id <= 999:
        raise EncodeError(f"host id {host_id} is outside 0..999", fmt=FMT)
    return b"#%03d,*\r\n" % host_id


def parse_poll(line: bytes) -> M77Poll:
    """Read a poll (with or without line end or firmware suffix); DecodeError otherwise."""
    m = _POLL_RE.fullmatch(line)
    if m is None:
        raise DecodeError("not an m77 poll", fmt=FMT, data=line)
    return M77Poll(host_id=int(m[1]), suffix=m[2])


def parse_answer(line: bytes) -> M77Answer:
    """Read one answer line; DecodeError on a bad shape, ChecksumError on a bad checksum."""
    m = _ANSWER_RE.fullmatch(line)
    if m is None:
        raise DecodeError("not an m77 answer line", fmt=FMT, data=line)
    actual = int(m[8], 16)
    expected = m77_checksum(line[1:22])
    if actual != expected:
        raise ChecksumError(
            f"checksum {actual:02X} does not match {expected:02X}",
            fmt=FMT,
            expected=expected,
            actual=actual,
            data=line,
            offset=23,
        )
    return M77Answer(
        host_id=int(m[1]),
        channel=int(m[2]),
        detector_id=int(m[3]),
        state=_STATE_BY_DIGIT[line[11]],
        battery=line[13] - 0x30,
        threshold=int(m[6]),
        delay_ms=int(m[7]) * 10,
    )


def _check_range(name: str, value: int, high: int) -> None:
    if not 0 <= value <= high:
        raise EncodeError(f"{name} {value} is outside 0..{high}", fmt=FMT)


def encode_answer(answer: M77Answer) -> bytes:
    """The answer line for ``answer``, checksummed and CR LF terminated."""
    _check_range("host id", answer.host_id, 999)
    _check_range("channel", answer.channel, 99)
    _check_range("detector id", answer.detector_id, 99)
    _check_range("battery", answer.battery, 9)
    _check_range("threshold", answer.threshold, 999)
    if answer.delay_ms % 10:
        raise EncodeError(f"delay {answer.delay_ms} ms is not a multiple of 10 ms", fmt=FMT)
    _check_range("delay (10 ms units)", answer.delay_ms // 10, 999)
    state = _DIGIT_BY_STATE.get(answer.state)
    if state is None:
        raise EncodeError(f"state {answer.state!r} is not free, occupied or fault", fmt=FMT)
    body = b"%03d,%02d,%02d,%d,%d,%03d,%03d" % (
        answer.host_id,
        answer.channel,
        answer.detector_id,
        state,
        answer.battery,
        answer.threshold,
        answer.delay_ms // 10,
    )
    return b"$%s*%02X\r\n" % (body, m77_checksum(body))


@dataclass(slots=True)
class LineStats:
    """Running counters of a ``LineSplitter``.

    ``dropped_bytes`` counts every byte that reached no delivered line, line ends of
    dropped lines included; the CR LF of a delivered line is not counted as dropped.
    """

    bytes_in: int = 0
    lines: int = 0
    dropped_bytes: int = 0
    overlong_lines: int = 0


class LineSplitter:
    """Sans-I/O splitter of a receiver's byte stream into lines that start at ``$``/``#``.

    ``feed()`` bytes as they arrive, then take complete lines with ``next_line()`` (None
    means "need more") or by iterating. Lines come back without their CR LF. ``max_line``
    bounds a raw line (between two LFs, CR included); a longer one is dropped whole.
    """

    def __init__(self, *, max_line: int = 128) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.stats = LineStats()
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self._next = 0
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished line."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes from the wire; never raises on their content."""
        stats = self.stats
        stats.bytes_in += len(data)
        buf = self._buf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if self._discarding:
                stats.dropped_bytes += nl + 1 - start
                self._discarding = False
            else:
                self._take(bytes(buf[start:nl]), nl + 1 - start)
            start = nl + 1
        del buf[:start]
        if len(buf) > self.max_line:
            stats.dropped_bytes += len(buf)
            if not self._discarding:
                stats.overlong_lines += 1
                self._discarding = True
            buf.clear()

    def _take(self, raw: bytes, size: int) -> None:
        stats = self.stats
        if len(raw) > self.max_line:
            # Complete but overlong: it arrived within one feed, so was never buffered.
            stats.overlong_lines += 1
            stats.dropped_bytes += size
            return
        d = raw.find(b"$")
        h = raw.find(b"#")
        first = d if h < 0 or 0 <= d < h else h
        if first < 0:
            stats.dropped_bytes += size
            return
        end = len(raw) - 1 if raw.endswith(b"\r") else len(raw)
        stats.dropped_bytes += first
        stats.lines += 1
        self._lines.append(raw[first:end])

    def next_line(self) -> bytes | None:
        """The next complete line, or None when more bytes are needed."""
        if self._next < len(self._lines):
            line = self._lines[self._next]
            self._next += 1
            if self._next == len(self._lines):
                self._lines.clear()
                self._next = 0
            return line
        return None

    def __iter__(self) -> Iterator[bytes]:
        """Every complete line buffered so far."""
        while (line := self.next_line()) is not None:
            yield line
