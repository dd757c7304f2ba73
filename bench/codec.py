"""Codec throughput on one core against the serial line rate the codec must keep up with.

Run by ``make bench`` (``.venv/bin/python bench/codec.py``). For each codec it prints the
best of several timed runs in frames per second, the frames per second the serial link can
carry at that frame size, their ratio, and PASS when the ratio reaches the goal (100x):

- concentrator stream decoder: a large buffer of realistic uplink frames fed in 256-byte
  chunks, as a serial read returns them; link 115200 baud 8N1 = 11,520 bytes/s.
- m77 answer parser (alone, and behind the line splitter); link 9600 baud 8N1 = 960 bytes/s.
- each sensor payload decoder through ``firmware_protocols.sensors.decode``; the link rate
  is that of the concentrator frame that carries the payload.

It always exits 0: it reports, it does not gate.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_protocols import concentrator, m77

GOAL = 100.0
REPEATS = 5
CONCENTRATOR_BYTES_PER_S = 115_200 / 10  # 8N1: 10 bits on the wire per byte
M77_BYTES_PER_S = 9_600 / 10
CHUNK = 256

# (format, kind, port, payload) as SENSOR_FORMATS.md lays them out.
PAYLOADS: list[tuple[str, str, int, bytes]] = [
    ("bosch-pls", "status", 1, bytes.fromhex("01")),
    ("bosch-pls", "heartbeat", 2, bytes.fromhex("01ff")),
    ("nwave-nps", "status", 1, bytes.fromhex("95")),
    ("nwave-nps", "heartbeat", 2, bytes.fromhex("017d28")),
    ("nwave-nps", "startup", 3, bytes.fromhex("0204090200")),
    (
        "dingtek-do20x",
        "telemetry",
        3,
        bytes.fromhex("80003102170123100001680012fff300401437002a0081"),
    ),
]


def best_of(run: Callable[[], int], repeats: int = REPEATS) -> tuple[float, int]:
    """Best wall time of ``repeats`` runs, and the item count one run processed."""
    best = float("inf")
    count = 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def report(name: str, seconds: float, count: int, frame_bytes: float, link_bps: float) -> bool:
    rate = count / seconds
    line = link_bps / frame_bytes
    ratio = rate / line
    ok = ratio >= GOAL
    print(
        f"{name:<38} {rate:>12,.0f}/s  frame {frame_bytes:5.1f} B  line {line:>8,.0f}/s"
        f"  {ratio:>8,.0f}x  {'PASS' if ok else 'FAIL'}"
    )
    return ok


def bench_concentrator(rng: random.Random) -> bool:
    frames = []
    for i in range(40_000):
        fmt, _, port, payload = PAYLOADS[i % len(PAYLOADS)]
        frames.append(
            concentrator.encode_frame(
                concentrator.UplinkFrame(
                    sensor_id=rng.randrange(1, 2**32),
                    rssi_dbm=rng.randrange(-130, -40),
                    snr_db=rng.randrange(-80, 40) / 4,
                    fmt=fmt,
                    port=port,
                    payload=payload,
                )
            )
        )
    stream = b"".join(frames)
    chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]

    def run() -> int:
        dec = concentrator.ConcentratorDecoder()
        n = 0
        for chunk in chunks:
            dec.feed(chunk)
            while dec.next_frame() is not None:
                n += 1
        if n != len(frames) or dec.stats.dropped_bytes:
            raise SystemExit(f"concentrator bench decoded {n} of {len(frames)} frames")
        return n

    seconds, count = best_of(run)
    return report(
        "concentrator stream (256 B reads)",
        seconds,
        count,
        len(stream) / len(frames),
        CONCENTRATOR_BYTES_PER_S,
    )


def bench_m77(rng: random.Random) -> list[bool]:
    states: list[m77.M77State] = ["free", "occupied", "fault"]
    lines = [
        m77.encode_answer(
            m77.M77Answer(
                host_id=1,
                channel=rng.randrange(100),
                detector_id=i % 100,
                state=states[i % 3],
                battery=rng.randrange(10),
                threshold=rng.randrange(1, 501),
                delay_ms=rng.randrange(1000) * 10,
            )
        )
        for i in range(20_000)
    ]
    stream = b"".join(lines)
    chunks = [stream[i : i + 64] for i in range(0, len(stream), 64)]
    parse = m77.parse_answer

    def run_parse() -> int:
        for line in lines:
            parse(line)
        return len(lines)

    def run_split() -> int:
        splitter = m77.LineSplitter()
        n = 0
        for chunk in chunks:
            splitter.feed(chunk)
            while (line := splitter.next_line()) is not None:
                parse(line)
                n += 1
        return n

    size = len(stream) / len(lines)
    seconds, count = best_of(run_parse)
    results = [report("m77 parse_answer", seconds, count, size, M77_BYTES_PER_S)]
    seconds, count = best_of(run_split)
    results.append(
        report("m77 splitter + parse (64 B reads)", seconds, count, size, M77_BYTES_PER_S)
    )
    return results


def bench_sensors() -> list[bool]:
    try:
        from firmware_protocols import sensors
    except ImportError as exc:
        print(f"sensor decoders: not available ({exc}); skipped")
        return []
    results = []
    n = 50_000
    decode = sensors.decode
    for fmt, kind, port, payload in PAYLOADS:
        name = f"sensors {fmt} {kind} (port {port})"
        try:
            decode(fmt, payload, port=port)
        except Exception as exc:  # a bench reports, it does not stop at the first failure
            print(f"{name:<38} cannot decode the sample payload: {exc}  FAIL")
            results.append(False)
            continue

        def run(fmt: str = fmt, payload: bytes = payload, port: int = port) -> int:
            for _ in range(n):
                decode(fmt, payload, port=port)
            return n

        seconds, count = best_of(run)
        frame = len(payload) + 15  # the concentrator uplink frame that carries it
        results.append(report(name, seconds, count, frame, CONCENTRATOR_BYTES_PER_S))
    return results


def main() -> int:
    rng = random.Random(20240601)
    print(f"codec throughput, one core, best of {REPEATS} runs; goal >= {GOAL:.0f}x line rate")
    print("(concentrator and sensor frames at 115200 baud 8N1, m77 lines at 9600 baud 8N1)")
    started = time.perf_counter()
    results = [bench_concentrator(rng), *bench_m77(rng), *bench_sensors()]
    failed = results.count(False)
    verdict = "PASS" if not failed else f"FAIL ({failed} below goal)"
    print(f"codec bench: {verdict}; {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
