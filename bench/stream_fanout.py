"""The live stream under a county's screens: 300 SSE clients, figures or firehose.

    .venv/bin/python bench/stream_fanout.py [--clients 300] [--lots 50] [--rate 10] [--seconds 10]

Runs central (SQLite, a generated site of ``--lots`` lots of 20 bays, no MQTT) under
uvicorn in a child process, with one extra route that publishes notices into its hub from
a thread as the ingest does (a batch every 50 ms): per lot ``--rate`` lot notices a second
(the lot's ``free`` counts up), as many ``bay`` and ``bay_changed`` notices, each stamped
with its publish time. Clients (raw asyncio sockets in a second child process, so the
server's CPU is its own): two thirds are overview screens (``kinds=lot,box``), one third
lot pages (``lots=Lnn``, the dashboard's kinds), spread over the lots.

Two runs in one go: the floor is the firehose as the pages had it before (no subscription,
``STREAM_COALESCE_S=0``: every client gets a frame per notice), then figures (the pages'
subscriptions, ``STREAM_COALESCE_S=0.25``). Each prints server CPU seconds per 1,000
notices published, frames per client, display lag p50/p99 (a frame's arrival minus its
notice's publish), resyncs, and how many clients reached the last figures published within
30 s of the end ("diverged": those that did not). Clients run in ``--client-procs``
processes. Goal: with figures, lag p99 <= 1 s, no client diverged, frames per client
<= 0.25 x what the firehose sends each client (a frame per notice published).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import _sse as sse  # noqa: E402

BAYS = 20
STAMP = re.compile(rb'"t":([0-9.]+)')
LOT = re.compile(rb'event: lot\ndata: \{"type":"lot","lot_id":"([^"]+)","free":(\d+)')
PASSWORD = "bench-stream-password"


def site_toml(lots: int) -> str:
    out = ['[site]\nid = "benchtown"\nname = "Bench town"\ntimezone = "Asia/Shanghai"\n']
    for n in range(1, lots + 1):
        out.append(f'[boxes.box-{n:03d}]\nname = "box {n}"\n')
        out.append(
            f'[lots.L{n:03d}]\nname = "Lot {n}"\nbox_id = "box-{n:03d}"\n'
            f'bays = {{ count = {BAYS}, pattern = "L{n:03d}-{{n:03d}}" }}\n'
        )
    return "\n".join(out)


def serve(port: int, work: str, lots: int, window: float, clients: int) -> None:
    import uvicorn

    from central.app import create_app
    from central.auth.models import Role
    from central.auth.service import add_user
    from central.settings import CentralSettings

    site = Path(work) / "site.toml"
    site.write_text(site_toml(lots), encoding="utf-8")
    settings = CentralSettings(
        site_file=site,
        database_url=f"sqlite:///{work}/central.db",
        ingest=False,
        forecast_every_s=0,
        stream_coalesce_s=window,
        stream_max_clients=clients + 10,
        stream_max_per_token=clients + 10,
        http_max_connections=clients + 100,
        http_max_connections_per_address=clients + 100,
    )
    app = create_app(settings)
    last: dict[str, int] = {}
    published = [0]

    def publisher(rate: float, seconds: float) -> None:
        hub = app.state.central.hub
        step = 0.05
        per_lot = rate * step  # lot notices per lot per batch (fractional: carried)
        carry = 0.0
        free = 0
        end = time.monotonic() + seconds
        tick = time.monotonic()
        while time.monotonic() < end:
            carry += per_lot
            batch: list[dict[str, Any]] = []
            while carry >= 1:
                carry -= 1
                free += 1
                now = time.time()
                for n in range(1, lots + 1):
                    lot = f"L{n:03d}"
                    bay = f"{lot}-{free % BAYS + 1:03d}"
                    state = "occupied" if free % 2 else "free"
                    batch.append(
                        {
                            "type": "bay_changed",
                            "box_id": f"box-{n:03d}",
                            "seq": free,
                            "bay_id": bay,
                            "lot_id": lot,
                            "zone_id": None,
                            "to_state": state,
                            "at": now,
                            "t": now,
                        }
                    )
                    batch.append(
                        {
                            "type": "bay",
                            "bay_id": bay,
                            "lot_id": lot,
                            "zone_id": None,
                            "state": state,
                            "since": now,
                            "sensor_flags": "",
                            "t": now,
                        }
                    )
                    batch.append(
                        {
                            "type": "lot",
                            "lot_id": lot,
                            "free": free,
                            "occupied": 0,
                            "unknown": 0,
                            "closed": 0,
                            "status": "spacesAvailable",
                            "t": now,
                        }
                    )
                    last[lot] = free
            if batch:
                hub.publish(batch)
                published[0] += len(batch)
            tick += step
            time.sleep(max(0.0, tick - time.monotonic()))

    @app.post("/bench/publish")
    def publish(rate: float, seconds: float) -> dict[str, bool]:
        threading.Thread(target=publisher, args=(rate, seconds), daemon=True).start()
        return {"ok": True}

    @app.get("/bench/state")
    def state() -> dict[str, Any]:
        cpu = os.times()
        return {
            "cpu": cpu.user + cpu.system,
            "last": last,
            "published": published[0],
            "resyncs": app.state.central.hub.resyncs,
        }

    @app.post("/bench/seed")
    def seed() -> dict[str, bool]:
        add_user(
            app.state.central.engine,
            username="wall",
            password=PASSWORD,
            role=Role.VIEWER,
            actor="bench",
        )
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _sse(
    port: int, token: str, query: str, stats: dict[str, Any], done: asyncio.Event
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    path = f"/api/v1/stream?{query}" if query else "/api/v1/stream"
    writer.write(
        f"GET {path} HTTP/1.0\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(sse.OK):
        raise SystemExit(f"stream refused: {head[:60]!r}")
    stats["open"].set()
    async for arrived, whole in sse.frames(reader, done):
        # Regular expressions, not json per frame: the clients must not be the bottleneck.
        stats["resyncs"] += whole.count(b"event: resync\n")
        stats["frames"] += whole.count(b"\ndata: ") - whole.count(b"event: resync\n")
        stats["frames"] -= whole.count(b"event: hello\n")
        stats["lags"].extend(arrived - float(t) for t in STAMP.findall(whole))
        for lot, free in LOT.findall(whole):
            stats["last"][lot.decode()] = int(free)
        if stats["want"] is not None and stats["last"] == stats["want"]:
            stats["converged"] = arrived
            stats["reached"].set()
    writer.close()


def run_clients(port: int, token: str, queries: list[str], inbox: Any, out: Any) -> None:
    """Clients until each has the last figures (sent in ``inbox`` when publishing ended)
    or 30 s after that."""

    async def main() -> list[dict[str, Any]]:
        done = asyncio.Event()
        all_stats = [
            {
                "frames": 0,
                "resyncs": 0,
                "lags": [],
                "last": {},
                "open": asyncio.Event(),
                "reached": asyncio.Event(),
                "want": None,
                "converged": None,
            }
            for q in queries
        ]
        tasks = [
            asyncio.create_task(_sse(port, token, q, s, done))
            for q, s in zip(queries, all_stats, strict=True)
        ]
        await asyncio.gather(*(s["open"].wait() for s in all_stats))
        out.put("open")
        last, ended = await asyncio.get_running_loop().run_in_executor(None, inbox.get)
        for q, s in zip(queries, all_stats, strict=True):
            want = last
            if q.startswith("lots="):
                want = {q[5:9]: last[q[5:9]]}
            s["want"] = want
            if s["last"] == want:
                s["converged"] = time.time()
                s["reached"].set()
        waits = [asyncio.create_task(s["reached"].wait()) for s in all_stats]
        await asyncio.wait(waits, timeout=30)
        for w in waits:
            w.cancel()
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in all_stats:
            s["settle"] = (s["converged"] - ended) if s["converged"] is not None else None
            del s["open"], s["reached"]  # not picklable
        return all_stats

    out.put(asyncio.run(main()))


def _get(port: int, path: str, method: str = "GET", data: bytes | None = None) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def one_run(args: argparse.Namespace, coalesce: bool) -> dict[str, Any]:
    window = 0.25 if coalesce else 0.0
    from simulators.broker import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        server = mp.Process(target=serve, args=(port, work, args.lots, window, args.clients))
        server.start()
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _get(port, "/healthz")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            _get(port, "/bench/seed", "POST", b"")
            body = f"username=wall&password={PASSWORD}".encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/auth/login", data=body)
            with urllib.request.urlopen(req, timeout=60) as resp:
                token = json.loads(resp.read())["access_token"]
            queries = []
            for i in range(args.clients):
                if not coalesce:
                    queries.append("")  # as the pages asked before: everything
                elif i % 3 == 2:
                    lot = f"L{i // 3 % args.lots + 1:03d}"
                    queries.append(f"lots={lot}&kinds=lot,bay,bay_changed,sign,box")
                else:
                    queries.append("kinds=lot,box,alert_raised,alert_resolved")
            parts = [queries[k :: args.client_procs] for k in range(args.client_procs)]
            inboxes = [mp.Queue() for _ in parts]
            outs = [mp.Queue() for _ in parts]
            procs = [
                mp.Process(target=run_clients, args=(port, token, part, inbox, out))
                for part, inbox, out in zip(parts, inboxes, outs, strict=True)
            ]
            for proc in procs:
                proc.start()
            for out in outs:
                assert out.get(timeout=120) == "open"
            cpu0 = _get(port, "/bench/state")["cpu"]
            _get(port, f"/bench/publish?rate={args.rate}&seconds={args.seconds}", "POST", b"")
            time.sleep(args.seconds)
            published = -1
            while True:  # until the publisher is done
                state = _get(port, "/bench/state")
                if state["published"] == published:
                    break
                published = state["published"]
                time.sleep(0.5)
            ended = time.time()
            for inbox in inboxes:
                inbox.put((state["last"], ended))
            stats = [s for out in outs for s in out.get(timeout=180)]
            for proc in procs:
                proc.join(30)
            state = _get(port, "/bench/state")
        finally:
            server.terminate()
            server.join(10)
    cpu = state["cpu"] - cpu0
    lags = sorted(x for s in stats for x in s["lags"])
    diverged = sum(1 for s in stats if s["converged"] is None)
    settles = sorted(s["settle"] for s in stats if s["settle"] is not None)
    return {
        "mode": "figures" if coalesce else "firehose",
        "settle_max": max(settles) if settles else float("nan"),
        "published": state["published"],
        "cpu_per_1000": 1000 * cpu / max(1, state["published"]),
        "frames_per_client": statistics.mean(s["frames"] for s in stats),
        "p50": lags[len(lags) // 2] if lags else float("nan"),
        "p99": lags[int(len(lags) * 0.99)] if lags else float("nan"),
        "resyncs": sum(s["resyncs"] for s in stats),
        "diverged": diverged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--lots", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="lot notices per lot per s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()
    print(
        f"load before: {os.getloadavg()[0]:.1f}; {args.clients} clients, {args.lots} lots, "
        f"{args.rate:g} lot + bay + bay_changed notices per lot per s, {args.seconds:g} s"
    )
    results = []
    for coalesce in (False, True):
        r = one_run(args, coalesce)
        results.append(r)
        print(
            f"{r['mode']}: {r['published']} notices, server CPU {r['cpu_per_1000']:.3f} s "
            f"per 1,000, {r['frames_per_client']:.0f} frames per client, display lag p50 "
            f"{r['p50']:.3f} s p99 {r['p99']:.3f} s, resyncs {r['resyncs']}, last figures "
            f"reached {args.clients - r['diverged']} of {args.clients} clients (the last "
            f"{r['settle_max']:.1f} s after publishing ended), diverged {r['diverged']}"
        )
    floor, figures = results
    # Against what a client of the firehose is sent (a frame per notice): its clients may
    # receive fewer, having overflowed.
    ratio = figures["frames_per_client"] / max(1, floor["published"])
    cpu = figures["cpu_per_1000"] / floor["cpu_per_1000"]
    ok = figures["p99"] <= 1.0 and figures["diverged"] == 0 and ratio <= 0.25
    print(f"load after: {os.getloadavg()[0]:.1f}; server CPU {cpu:.2f} x firehose")
    print(
        f"stream: lag p99 {figures['p99']:.2f} s, diverged {figures['diverged']}, frames "
        f"{ratio:.2f} x firehose (goal <= 1, 0, <= 0.25): {'PASS' if ok else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
