"""``GET /api/v1/stream``: Server-Sent Events for as long as the token that opened it is good.

The process's warden (``central.stream.warden``) reads the tokens of every open stream
again every ``RECHECK_S`` in one query, so an expired token's streams, a revoked one's
(also from another instance) or a disabled user's end within seconds; a logout through
this instance ends its streams at once (``Hub.end_token``). An ended stream gets
``event: end`` with the reason, then the connection closes; the client logs in again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from central.context import Central
from central.deps import CentralDep, Viewer
from central.stream.hub import RESYNC, Ended, sse_frame
from central.stream.snapshot import read_snapshot
from central.stream.subscription import Subscription, parse

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["stream"])
KEEPALIVE_S = 15.0
BATCH_CHUNKS = 64  # queued chunks (windows) joined into one write at most


@router.get(
    "/stream",
    summary="Server-Sent Events: live changes (bay, lot, zone, box, alert, ...)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"description": "This token already holds stream_max_per_token streams"},
        503: {"description": "stream_max_clients streams are open"},
    },
)
async def stream(
    request: Request,
    central: CentralDep,
    actor: Viewer,
    kinds: str | None = Query(
        None,
        max_length=4000,
        description="Comma-separated notice kinds the page handles (absent: all; empty: none)",
    ),
    lots: str | None = Query(
        None,
        max_length=16000,
        description="Comma-separated lot ids the page shows (absent: all lots)",
    ),
) -> StreamingResponse:
    hub = central.hub
    lot_boxes = {lot_id: lot.box_id for lot_id, lot in central.site.lots.items()}
    subscription = replace(parse(kinds, lots, lot_boxes), places=central.places)
    sub = hub.subscribe(role=actor.role, token_hash=actor.token_hash, subscription=subscription)

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            hello = {"site": central.site.id, "user": actor.name}
            if central.places is not None:  # a county town's stream
                hello["town"] = central.town_id or ""
            yield sse_frame("hello", hello)
            next_keepalive = time.monotonic() + KEEPALIVE_S
            held: bytes | Ended | None = None  # taken from the queue, not yet handled
            while True:
                item: bytes | Ended | None
                if held is not None:
                    item, held = held, None
                else:
                    wait = max(0.0, next_keepalive - time.monotonic())
                    try:
                        item = await asyncio.wait_for(sub.get(), wait)
                    except TimeoutError:
                        item = None
                if isinstance(item, Ended):
                    yield sse_frame("end", {"reason": item.reason})
                    return
                now = time.monotonic()
                if item is RESYNC:
                    yield await resync_frame(central, sub.subscription)
                elif item is not None:
                    # Every frame already queued goes out in one write (a window's worth).
                    parts = [item]
                    while len(parts) < BATCH_CHUNKS and not sub.empty():
                        more = sub.get_nowait()
                        if more is RESYNC or isinstance(more, Ended):
                            held = more
                            break
                        parts.append(more)
                    yield b"".join(parts)
                elif now >= next_keepalive:
                    if await request.is_disconnected():
                        return
                    next_keepalive = now + KEEPALIVE_S
                    yield b": keep-alive\n\n"
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def resync_frame(central: Central, subscription: Subscription) -> bytes:
    """``resync`` with a snapshot of what the client shows; without one if the store
    cannot be read (the client reloads through the API, as it would anyway)."""
    try:
        snapshot = await run_in_threadpool(read_snapshot, central.engine, subscription)
    except Exception:
        log.exception("a live-stream resync could not read its snapshot")
        return RESYNC
    return sse_frame("resync", {"reason": RESYNC_REASON, "snapshot": snapshot})


RESYNC_REASON = "notices were dropped (a slow client, or a gap in the relay)"
