"""Is the box's clock disciplined? Asked of the kernel, as ``timedatectl`` and ``ntpstat`` do.

``adjtimex(2)`` with no modes returns the kernel's clock state; ``TIME_ERROR`` (5) means
no time daemon has synchronised it (or it lost sync). This works with systemd-timesyncd,
chrony and ntpd alike, and needs no privileges. Where the call is unavailable (not Linux),
the answer is "unknown", reported as not synchronised with ``source=None``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

TIME_ERROR = 5
_TIMEX_BYTES = 512  # struct timex is 208 bytes on x86_64; a larger zeroed buffer is safe


@dataclass(frozen=True, slots=True)
class ClockReading:
    synchronised: bool
    max_error_s: float | None
    source: str | None


def read_clock() -> ClockReading:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buffer = ctypes.create_string_buffer(_TIMEX_BYTES)  # modes = 0: read only
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return ClockReading(synchronised=False, max_error_s=None, source=None)
    if state < 0:
        return ClockReading(synchronised=False, max_error_s=None, source=None)
    # struct timex: int modes; (pad) long offset, freq, maxerror (microseconds), ...
    maxerror_us = ctypes.c_long.from_buffer(buffer, 3 * ctypes.sizeof(ctypes.c_long)).value
    return ClockReading(
        synchronised=state != TIME_ERROR,
        max_error_s=maxerror_us / 1e6,
        source="kernel",
    )
