"""Reading a server-sent-events stream in benches: whole frames, as cheaply as a client can.

Shared by bench/stream_fanout.py and bench/county.py's screens (raw asyncio sockets, not an
HTTP client, so hundreds of clients in one process are not the bottleneck).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

OK = (b"HTTP/1.1 200", b"HTTP/1.0 200")


async def frames(
    reader: asyncio.StreamReader, done: asyncio.Event
) -> AsyncIterator[tuple[float, bytes]]:
    """After the response head: (arrival time, the whole frames read at once) until the
    server closes or ``done`` is set; a partial frame waits for the rest."""
    buffer = b""
    while not done.is_set():
        try:
            data = await asyncio.wait_for(reader.read(1 << 16), 1.0)
        except TimeoutError:
            continue
        if not data:
            return
        arrived = time.time()
        buffer += data
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            continue
        whole, buffer = buffer[: cut + 2], buffer[cut + 2 :]
        yield arrived, whole
