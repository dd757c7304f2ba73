"""The M77 receiver simulator: answers its own polls, with the faults it is told to inject."""

from __future__ import annotations

import argparse
import asyncio
import os
import termios
import tty
from pathlib import Path

import pytest

from firmware_protocols.crc import ChecksumError
from firmware_protocols.m77 import LineSplitter, encode_poll, parse_answer
from simulators.m77 import M77Core, M77Simulator, configure


def lines_of(data: bytes) -> list[bytes]:
    splitter = LineSplitter()
    splitter.feed(data)
    return list(splitter)


def test_m77_core_answers_only_its_hosts_one_line_per_detector() -> None:
    """A poll for a known host gives one valid line per detector; others get nothing."""
    core = M77Core(hosts={1: 3, 5: [2, 9]}, seed=1)
    core.set_state(5, 9, "occupied")
    replies = core.receive(encode_poll(5) + encode_poll(4) + b"#001,*$01\r\n")
    assert [host for host, _ in replies] == [5, 1]
    answers = [parse_answer(line) for line in lines_of(replies[0][1])]
    assert [(a.host_id, a.detector_id, a.state) for a in answers] == [
        (5, 2, "free"),
        (5, 9, "occupied"),
    ]
    assert len(lines_of(replies[1][1])) == 3
    assert core.counts.polls_seen == 2 and core.counts.answer_lines == 5


def test_m77_core_polls_fed_byte_by_byte_are_answered() -> None:
    """A poll split across reads is still one poll."""
    core = M77Core(hosts={12: 1})
    poll = encode_poll(12)
    replies = [r for i in range(len(poll)) for r in core.receive(poll[i : i + 1])]
    assert [h for h, _ in replies] == [12]


def test_m77_core_faults_silent_bad_checksum_garbage() -> None:
    """Silent hosts ignore polls; bad-checksum lines fail the check; garbage spares answers."""
    core = M77Core(hosts={1: 2, 2: 1}, seed=4, garbage_before=6)
    core.silent_hosts.add(2)
    core.bad_checksum.add((1, 2))
    assert core.receive(encode_poll(2)) == []
    ((_, data),) = core.receive(encode_poll(1))
    first, second = lines_of(data)
    assert parse_answer(first).detector_id == 1
    with pytest.raises(ChecksumError):
        parse_answer(second)
    c = core.counts
    assert (c.polls_ignored, c.answer_lines, c.bad_checksum_lines, c.garbage_bytes) == (1, 1, 1, 6)


def test_m77_core_truth_uses_canonical_ids() -> None:
    """truth() names detectors as the box does (M77-<host>-<detector>)."""
    core = M77Core(hosts={3: 2})
    core.set_state(3, 2, "fault")
    assert core.truth() == {"M77-003-001": "free", "M77-003-002": "fault"}


async def test_m77_simulator_answers_a_poll_on_the_pty(tmp_path: Path) -> None:
    """Through the device path, a poll gets its answer lines after the turnaround delay."""
    async with M77Simulator(hosts={7: 2}, link=tmp_path / "ttyM", answer_delay_s=0.01) as sim:
        sim.set_state(7, 1, "occupied")
        fd = os.open(sim.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(fd, termios.TCSANOW)
        try:
            os.write(fd, encode_poll(7))
            data = b""
            async with asyncio.timeout(2):
                while data.count(b"\n") < 2:
                    try:
                        data += os.read(fd, 4096)
                    except BlockingIOError:
                        await asyncio.sleep(0.005)
        finally:
            os.close(fd)
    states = [parse_answer(line).state for line in lines_of(data)]
    assert states == ["occupied", "free"]


def test_m77_cli_configure_parses_hosts() -> None:
    """`parkgrid sim m77` takes HOST[:DETECTORS] pairs and refuses bad ones."""
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(["--host", "1:16", "--host", "2", "--seed", "3"])
    assert args.host == [(1, 16), (2, 8)] and callable(args.handler)
    with pytest.raises(SystemExit):
        parser.parse_args(["--host", "1000:2"])
