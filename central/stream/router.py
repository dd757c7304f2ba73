"""``GET /api/v1/stream``: Server-Sent Events for as long as the token that opened it is good.

Each stream re-checks its token every ``RECHECK_S`` (through the token cache: one store
read per token per few seconds), so an expired token, a revoked one (also from another
instance) or a disabled user's ends within seconds; a logout through this instance ends
its streams at once (``Hub.end_token``). An ended stream gets ``event: end`` with the
reason, then the connection closes; the client logs in again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from central.deps import CentralDep, Viewer
from central.errors import Unauthenticated
from central.stream.hub import Ended, sse_frame

router = APIRouter(prefix="/api/v1", tags=["stream"])
KEEPALIVE_S = 15.0
RECHECK_S = 5.0


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
async def stream(request: Request, central: CentralDep, actor: Viewer) -> StreamingResponse:
    hub = central.hub
    sub = hub.subscribe(role=actor.role, token_hash=actor.token_hash)

    async def still_allowed() -> str | None:
        """None while the token is good; else why the stream ends."""
        try:
            await run_in_threadpool(central.tokens.by_digest, central.engine, actor.token_hash)
        except Unauthenticated as exc:
            return exc.detail
        return None

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            yield sse_frame("hello", {"site": central.site.id, "user": actor.name})
            next_check = time.monotonic() + RECHECK_S
            next_keepalive = time.monotonic() + KEEPALIVE_S
            while True:
                wait = max(0.0, min(next_check, next_keepalive) - time.monotonic())
                try:
                    item = await asyncio.wait_for(sub.queue.get(), wait)
                except TimeoutError:
                    item = None
                if isinstance(item, Ended):
                    yield sse_frame("end", {"reason": item.reason})
                    return
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + RECHECK_S
                    reason = await still_allowed()
                    if reason is not None:
                        yield sse_frame("end", {"reason": reason})
                        return
                if item is not None:
                    yield item
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
