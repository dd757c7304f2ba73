"""433 MHz detector receivers (M77R / M76R) answering polls on a virtual serial line.

Theory of operation
-------------------
One or more receivers share one line, each with its host id and its detectors. The box
writes ``#HHH,*``; the receiver with that host id waits ``answer_delay_s`` (the RS-485
turnaround) and writes one ``$...*KK`` line per detector (``firmware_protocols.m77``),
other receivers keep quiet::

    box  ->  #001,*\\r\\n
    sim  <-  [garbage] $001,01,01,1,9,050,010*KK\\r\\n  $001,01,02,0,9,050,010*KK\\r\\n ...

``M77Core`` is the receiver without I/O (``receive(bytes) -> [(host, answer bytes)]``) and
counts what it injected (``M77Counts``); ``M77Simulator`` puts it on a ``PtyLink`` with
``async with``. Faults: ``silent_hosts`` never answer; ``bad_checksum`` detectors' lines
carry a wrong checksum; ``garbage_before`` random bytes (never ``$ # CR LF``, so the answer
after them still reads) before each answer block; ``garbage_line(n)`` a line of noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from firmware_protocols.errors import DecodeError
from firmware_protocols.m77 import (
    LineSplitter,
    M77Answer,
    M77State,
    encode_answer,
    parse_poll,
)
from simulators.pty_link import PtyLink

__all__ = ["DetectorState", "M77Core", "M77Counts", "M77Simulator", "configure"]

_GARBAGE_ALPHABET = bytes(b for b in range(256) if b not in b"$#\r\n")


@dataclass(slots=True)
class DetectorState:
    """One buried detector as its receiver reports it."""

    state: M77State = "free"
    battery: int = 9
    threshold: int = 50
    delay_ms: int = 100
    channel: int = 1


@dataclass(slots=True)
class M77Counts:
    """What the simulated receivers saw and sent."""

    polls_seen: int = 0
    polls_answered: int = 0
    polls_ignored: int = 0  # polls for a silent host
    answer_lines: int = 0  # good answer lines
    bad_checksum_lines: int = 0
    garbage_bytes: int = 0
    bytes_written: int = 0
    bytes_lost: int = 0


class M77Core:
    """Receivers and their detectors, without I/O."""

    def __init__(
        self,
        *,
        hosts: Mapping[int, int | Iterable[int]],
        seed: int | None = None,
        garbage_before: int = 0,
    ) -> None:
        self.rng = random.Random(seed)
        self.detectors: dict[int, dict[int, DetectorState]] = {}
        for host, dets in hosts.items():
            ids = range(1, dets + 1) if isinstance(dets, int) else dets
            self.detectors[host] = {d: DetectorState() for d in ids}
        self.silent_hosts: set[int] = set()
        self.bad_checksum: set[tuple[int, int]] = set()
        self.garbage_before = garbage_before
        self.counts = M77Counts()
        self._splitter = LineSplitter()

    def set_state(self, host: int, detector: int, state: M77State) -> None:
        """What the detector reports from now on (``free``, ``occupied``, ``fault``)."""
        self.detectors[host][detector].state = state

    def detector(self, host: int, detector: int) -> DetectorState:
        return self.detectors[host][detector]

    def truth(self) -> dict[str, M77State]:
        """Each detector's state by its canonical sensor id (``M77-001-007``)."""
        return {
            f"M77-{h:03d}-{d:03d}": s.state
            for h, dets in self.detectors.items()
            for d, s in dets.items()
        }

    def garbage(self, n: int) -> bytes:
        self.counts.garbage_bytes += n
        return bytes(self.rng.choice(_GARBAGE_ALPHABET) for _ in range(n))

    def garbage_line(self, n: int) -> bytes:
        """A line of noise with no start character: the box drops it whole."""
        return self.garbage(n) + b"\r\n"

    def answer(self, host: int) -> bytes:
        """Every answer line of receiver ``host`` (with the configured faults)."""
        out = bytearray(self.garbage(self.garbage_before) if self.garbage_before else b"")
        for det_id, d in self.detectors[host].items():
            line = encode_answer(
                M77Answer(
                    host_id=host,
                    channel=d.channel,
                    detector_id=det_id,
                    state=d.state,
                    battery=d.battery,
                    threshold=d.threshold,
                    delay_ms=d.delay_ms,
                )
            )
            if (host, det_id) in self.bad_checksum:
                kk = int(line[23:25], 16) ^ 0x5A
                line = line[:23] + b"%02X" % kk + line[25:]
                self.counts.bad_checksum_lines += 1
            else:
                self.counts.answer_lines += 1
            out += line
        return bytes(out)

    def receive(self, data: bytes) -> list[tuple[int, bytes]]:
        """Bytes from the box in; ``(host, answer bytes)`` for each poll one of ours answers."""
        self._splitter.feed(data)
        out = []
        for line in self._splitter:
            try:
                poll = parse_poll(line)
            except DecodeError:
                continue
            if poll.host_id not in self.detectors:
                continue
            self.counts.polls_seen += 1
            if poll.host_id in self.silent_hosts:
                self.counts.polls_ignored += 1
                continue
            self.counts.polls_answered += 1
            out.append((poll.host_id, self.answer(poll.host_id)))
        return out


class M77Simulator:
    """An ``M77Core`` on a pty: ``async with M77Simulator(hosts={1: 4}) as sim``.

    ``link`` is a ``PtyLink`` (left open on exit), a path for the device symlink, or None
    for a temporary one; ``sim.path`` is what the box opens.
    """

    def __init__(
        self,
        *,
        hosts: Mapping[int, int | Iterable[int]],
        link: PtyLink | Path | str | None = None,
        seed: int | None = None,
        answer_delay_s: float = 0.01,
        garbage_before: int = 0,
    ) -> None:
        self.core = M77Core(hosts=hosts, seed=seed, garbage_before=garbage_before)
        if isinstance(link, PtyLink):
            self.link, self._own_link = link, False
        else:
            if link is None:
                self.link = PtyLink(name="ttyM77")
            else:
                path = Path(link)
                self.link = PtyLink(name=path.name, directory=path.parent)
            self._own_link = True
        self.answer_delay_s = answer_delay_s
        self._task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        return self.link.path

    @property
    def counts(self) -> M77Counts:
        return self.core.counts

    def set_state(self, host: int, detector: int, state: M77State) -> None:
        self.core.set_state(host, detector, state)

    def truth(self) -> dict[str, M77State]:
        return self.core.truth()

    async def __aenter__(self) -> M77Simulator:
        self._task = asyncio.create_task(self._serve(), name="m77-sim")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_link:
            self.link.close()

    def write(self, data: bytes) -> int:
        """Write without blocking; what the pty cannot take now is lost (and counted)."""
        fd = self.link.master_fd
        written = 0
        if fd is not None and data:
            with contextlib.suppress(BlockingIOError, OSError):
                written = os.write(fd, data)
        self.counts.bytes_written += written
        self.counts.bytes_lost += len(data) - written
        return written

    async def send_garbage_line(self, n: int) -> None:
        self.write(self.core.garbage_line(n))

    async def _serve(self) -> None:
        # Polling the master fd: unplug()/replug() replace it under us.
        while True:
            data = self.link.read()
            if not data:
                await asyncio.sleep(0.002)
                continue
            for _, answer in self.core.receive(data):
                await asyncio.sleep(self.answer_delay_s)
                self.write(answer)


# --- parkgrid sim m77 ---


def _host_arg(text: str) -> tuple[int, int]:
    host, sep, count = text.partition(":")
    try:
        pair = int(host), int(count) if sep else 8
    except ValueError:
        raise argparse.ArgumentTypeError("use HOST[:DETECTORS], e.g. 1:16") from None
    if not 0 <= pair[0] <= 999 or not 1 <= pair[1] <= 99:
        raise argparse.ArgumentTypeError("host 0..999, detectors 1..99")
    return pair


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--link",
        type=Path,
        default=Path("/tmp/parkgrid/ttyM77"),
        help="where to create the device symlink the box opens",
    )
    parser.add_argument(
        "--host",
        type=_host_arg,
        action="append",
        default=[],
        metavar="HOST[:DETECTORS]",
        help="a receiver host id and its detector count (repeatable; default 1:8)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--change-interval",
        type=float,
        default=5.0,
        help="seconds between random detector state changes (0: never)",
    )
    parser.set_defaults(handler=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    hosts = dict(args.host) or {1: 8}
    return asyncio.run(_cli_main(args, hosts))


async def _cli_main(args: argparse.Namespace, hosts: dict[int, int]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rng = random.Random(args.seed)
    async with M77Simulator(hosts=hosts, link=args.link, seed=args.seed) as sim:
        print(sim.path, flush=True)
        print(f"receivers {sorted(hosts)}; Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.is_set():
            timeout = args.change_interval if args.change_interval > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
            if not stop.is_set():
                host = rng.choice(sorted(hosts))
                det = rng.randint(1, hosts[host])
                current = sim.core.detector(host, det).state
                sim.set_state(host, det, "free" if current == "occupied" else "occupied")
    return 0
