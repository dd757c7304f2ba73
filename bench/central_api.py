"""GET /api/v1/lots: requests/s and p99 at 32 concurrent clients, beside a trivial endpoint.

    .venv/bin/python bench/central_api.py [--seconds S] [--clients C]

Runs central (SQLite, the small test site, no MQTT) under uvicorn in a child process, with
one extra route ``/bench/trivial`` returning ``{"ok": true}`` from a plain FastAPI handler.
The load generator is raw asyncio sockets with keep-alive (an HTTP client library would be
the bottleneck): C connections, each sending the next request when the last answer is in.
Goal: ``/api/v1/lots`` reaches at least half the trivial endpoint's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def serve(port: int, db: str) -> None:
    import uvicorn

    from central.app import create_app
    from central.settings import CentralSettings

    settings = CentralSettings(
        site_file=REPO / "tests" / "central" / "site_small.toml", database_url=db, ingest=False
    )
    app = create_app(settings)

    @app.get("/bench/trivial")
    async def trivial() -> dict[str, bool]:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _client(port: int, path: str, stop: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    while time.perf_counter() < stop:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{path}: {head[:40]!r}")
        latencies.append(time.perf_counter() - started)
    writer.close()


async def load(port: int, path: str, clients: int, seconds: float) -> tuple[float, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, path, stop, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.db)
        return 0
    from simulators.broker import free_port, wait_for_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="parkgrid-bench-") as tmp:
        db = f"sqlite:///{Path(tmp) / 'api.db'}"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), "--db", db],
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            wait_for_port("127.0.0.1", port, 30)
            asyncio.run(load(port, "/api/v1/lots", 4, 1))  # warm up
            results = {}
            for path in ("/bench/trivial", "/api/v1/lots"):
                results[path] = asyncio.run(load(port, path, args.clients, args.seconds))
                rate, p99 = results[path]
                print(
                    f"  {path:<18} {rate:>8,.0f} req/s   p99 {p99:6.1f} ms   "
                    f"({args.clients} clients)"
                )
        finally:
            proc.terminate()
            proc.wait(10)
    ratio = results["/api/v1/lots"][0] / results["/bench/trivial"][0]
    print(f"\n  lots / trivial = {ratio:.2f}  (goal >= 0.50)  {'PASS' if ratio >= 0.5 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
