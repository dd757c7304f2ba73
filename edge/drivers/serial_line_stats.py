"""What a serial line counts: the counters its owner keeps and the snapshot it gives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from firmware_protocols.concentrator import StatusFrame, StreamStats
from firmware_protocols.m77 import LineStats


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialLineStats:
    """A snapshot of one line's counters, totals since the ``SerialLine`` was made.

    Stream counters (``frames`` .. ``buffered_bytes``) come from the concentrator decoder,
    or on an m77 line from the line splitter (``frames`` are lines, ``oversize`` overlong
    lines). Every byte read is in a delivered frame, in ``dropped_bytes`` or in
    ``buffered_bytes``.
    """

    line: str
    protocol: str
    device: str
    up: bool
    down_since: float | None
    down_reason: str | None
    opens: int
    reopen_count: int
    bytes_in: int
    bytes_out: int
    frames: int
    dropped_bytes: int
    buffered_bytes: int
    crc_failures: int
    oversize: int
    unknown_types: int
    unknown_formats: int
    malformed_frames: int
    unexpected_frames: int
    payload_decode_errors: int
    decode_errors_by_reason: Mapping[str, int]
    observations: int
    downlinks_sent: int
    downlink_acks: int
    last_status: StatusFrame | None
    polls: int
    answers: int
    checksum_failures: int
    bad_lines: int
    echoes: int
    timeouts: Mapping[int, int]
    hosts_up: Mapping[int, bool]
    errors: Mapping[str, int]


@dataclass(slots=True)
class LineCounters:
    """The owner's own counters (the stream counters are the decoder's)."""

    opens: int = 0
    bytes_out: int = 0
    unexpected_frames: int = 0
    payload_decode_errors: int = 0
    decode_errors_by_reason: dict[str, int] = field(default_factory=dict)
    observations: int = 0
    downlinks_sent: int = 0
    downlink_acks: int = 0
    last_status: StatusFrame | None = None
    polls: int = 0
    answers: int = 0
    checksum_failures: int = 0
    bad_lines: int = 0
    echoes: int = 0
    timeouts: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def add_counts(total: StreamStats | LineStats, part: StreamStats | LineStats) -> None:
    """Add a decoder's (or splitter's) counters into a running total of the same kind."""
    for f in fields(part):
        setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))
