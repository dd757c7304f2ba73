from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from central.deps import CentralDep, Viewer
from central.stream.hub import sse_frame

router = APIRouter(prefix="/api/v1", tags=["stream"])
KEEPALIVE_S = 15.0


@router.get(
    "/stream",
    summary="Server-Sent Events: live changes (bay, lot, zone, box, alert, ...)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(request: Request, central: CentralDep, actor: Viewer) -> StreamingResponse:
    hub = central.hub
    sub = hub.subscribe()

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            yield sse_frame("hello", {"site": central.site.id, "user": actor.name})
            while True:
                try:
                    yield await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keep-alive\n\n"
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
