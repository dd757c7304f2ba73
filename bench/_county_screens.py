"""The county's screens: SSE clients through the balancer, as the dashboard's pages use the
stream (``bench/stream_fanout.py``'s mix: two thirds overview screens, one third lot
pages), in child processes so the server's CPU is its own.

A screen opens ``/api/v1/stream`` through HAProxy from its own loopback address (the
deploy file allows 50 connections per client address; a county's screens come from many),
loads the lots (``GET /api/v1/lots``, as the page does on load and on every ``hello``),
then applies the ``lot`` notices and ``resync`` snapshots it hears. A stream cut by a dying
process is opened again after a second, as the browser's EventSource does. Display lag: a
``lot`` frame's arrival minus the ``ts`` the box stamped on the lot state (``state_ts``).
At the end each screen's view (free bays of the lots its page shows) is compared with the
database's, given up to ``settle`` seconds to converge.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from typing import Any

import _sse as sse

LOT = re.compile(
    rb'event: lot\ndata: \{"type":"lot","lot_id":"([^"]+)","free":(\d+),[^\n]*?"state_ts":([0-9.]+)'
)
RESYNC = re.compile(rb"event: resync\ndata: ([^\n]*)\n")
# A screen holds its stream and, while its page reloads (every hello), a second connection;
# the deploy balancer refuses a client address's 51st open connection. With 40 screens an
# address (runs A to C in docs/scale.md), a kill's reconnects doubled them past 50 and
# HAProxy reset 1,347 connects. An office behind one address must stay under 25 screens.
SCREENS_PER_ADDRESS = 20


def queries(
    site_lots: list[str], clients: int, towns: list[str] | None = None
) -> list[tuple[str, str | None, str | None]]:
    """(query, its lot or None for an overview, its town or None for the whole site) per
    client, stream_fanout's mix; with ``towns`` (a county) each screen is a town's page."""
    out: list[tuple[str, str | None, str | None]] = []
    for i in range(clients):
        if i % 3 == 2:
            lot = site_lots[i // 3 % len(site_lots)]
            town = lot.split("-", 1)[0] if towns else None
            out.append((f"lots={lot}&kinds=lot,bay,bay_changed,sign,box", lot, town))
        else:
            town = towns[i % len(towns)] if towns else None
            out.append(("kinds=lot,box,alert_raised,alert_resolved", None, town))
    return out


async def _get_json(port: int, path: str, src: str) -> Any:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
    writer.write(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        raise OSError(f"GET {path}: {head[:40]!r}")
    return json.loads(body)


class Screen:
    def __init__(
        self, port: int, token: str, query: str, lot: str | None, town: str | None, src: str
    ) -> None:
        self.port, self.token, self.query, self.lot, self.src = port, token, query, lot, src
        self.town = town
        self.api = f"/api/v1/towns/{town}" if town else "/api/v1"
        self.view: dict[str, int] = {}
        self.lags: list[float] = []
        self.frames = self.resyncs = self.reconnects = self.refused = 0
        self.causes: collections.Counter[str] = collections.Counter()  # why each reconnect
        self.opened = asyncio.Event()

    def _shows(self, lot_id: str) -> bool:
        if self.lot is not None:
            return lot_id == self.lot
        return self.town is None or lot_id.startswith(f"{self.town}-")

    async def _reload(self) -> None:
        for row in (await _get_json(self.port, f"{self.api}/lots", self.src))["lots"]:
            if self._shows(row["id"]) and row.get("free") is not None:
                self.view[row["id"]] = int(row["free"])

    async def run(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                cause = await self._stream(done)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                cause = f"{type(exc).__name__}: {str(exc)[:60]}"
            if not done.is_set():
                self.reconnects += 1
                self.causes[cause] += 1
                await asyncio.sleep(1.0)

    async def _stream(self, done: asyncio.Event) -> str:
        """Read the stream until it ends; why it ended."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=1 << 22, local_addr=(self.src, 0)
        )
        try:
            writer.write(
                f"GET {self.api}/stream?{self.query} HTTP/1.0\r\nHost: bench\r\n"
                f"Authorization: Bearer {self.token}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(sse.OK):
                self.refused += 1
                status = head.split(b"\r\n", 1)[0].decode(errors="replace")
                return f"refused: {status}"
            ended = "closed by the other end"
            async for arrived, whole in sse.frames(reader, done):
                if b"event: end\n" in whole:
                    ended = "end frame: " + whole.split(b"event: end\n", 1)[1][:80].decode(
                        errors="replace"
                    )
                if b"event: hello\n" in whole:  # the page reloads its figures
                    await self._reload()
                    self.opened.set()
                for snap in RESYNC.findall(whole):
                    self.resyncs += 1
                    for row in json.loads(snap).get("lot", []):
                        if self._shows(row["lot_id"]):
                            self.view[row["lot_id"]] = int(row["free"])
                for lot, free, ts in LOT.findall(whole):
                    self.frames += 1
                    self.lags.append(arrived - float(ts))
                    self.view[lot.decode()] = int(free)
            return ended
        finally:
            writer.close()

    def agrees(self, db: dict[str, int]) -> bool:
        want = {k: v for k, v in db.items() if self._shows(k)}
        return {k: v for k, v in self.view.items() if k in want} == want


Plan = list[tuple[str, str | None, str | None]]


def screens_worker(
    port: int, tokens: list[str], plan: Plan, first_src: int, ctl: Any, out: Any
) -> None:
    """Run ``plan``'s screens until told the database's view ``("end", db, settle)``;
    answer with each screen's figures."""

    async def main() -> None:
        done = asyncio.Event()
        screens = [
            Screen(
                port,
                tokens[i % len(tokens)],
                q,
                lot,
                town,
                f"127.0.0.{first_src + i // SCREENS_PER_ADDRESS}",
            )
            for i, (q, lot, town) in enumerate(plan)
        ]
        tasks = [asyncio.create_task(s.run(done)) for s in screens]
        await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in screens)), 300)
        out.put("open")
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, ctl.get)
            if cmd[0] == "take":  # the display lags since the last take
                out.put([lag for s in screens for lag in s.lags])
                for s in screens:
                    s.lags.clear()
            elif cmd[0] == "end":
                db, settle = cmd[1], cmd[2]
                deadline = time.monotonic() + settle
                while time.monotonic() < deadline:
                    if all(s.agrees(db) for s in screens):
                        break
                    await asyncio.sleep(0.2)
                done.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                out.put(
                    [
                        {
                            "lags": s.lags,
                            "agrees": s.agrees(db),
                            "frames": s.frames,
                            "resyncs": s.resyncs,
                            "reconnects": s.reconnects,
                            "refused": s.refused,
                            "causes": dict(s.causes),
                        }
                        for s in screens
                    ]
                )
                return

    asyncio.run(main())
