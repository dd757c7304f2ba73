"""Ports handed out by ``simulators.broker.free_port`` to parallel test workers.

``make test`` runs on every core (pytest-xdist). ``free_port`` checks that a port is free
and its owner binds it later, sometimes seconds later (a central process starting). Two
workers drawing from one range could both be handed the same port in that window: one CI
run lost a module of tests to "address already in use". Each worker draws from its own
slice, so two workers can never be handed the same port.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.broker import worker_port_range

ROOT = Path(__file__).resolve().parents[2]

DRAW = """
import json, sys
from simulators.broker import free_port
print(json.dumps([free_port() for _ in range(int(sys.argv[1]))]))
"""


def draw_ports(worker: str | None, count: str | None, how_many: int) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    if worker is not None and count is not None:
        env |= {"PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": count}
    out = subprocess.run(
        [sys.executable, "-c", DRAW, str(how_many)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    ports: list[int] = json.loads(out)
    return ports


def test_two_workers_are_never_handed_the_same_port() -> None:
    first = draw_ports("gw0", "2", 1500)
    second = draw_ports("gw1", "2", 1500)
    assert len(set(first)) == 1500 and len(set(second)) == 1500
    assert set(first).isdisjoint(second)
    assert max(first) < min(second)


def test_outside_a_worker_the_whole_range_is_used() -> None:
    ports = draw_ports(None, None, 400)
    low, high = worker_port_range(None, None)
    assert all(low <= p < high for p in ports)
    # Drawn over the whole range, not one worker's slice of it.
    assert max(ports) - min(ports) > (high - low) // 2


@pytest.mark.parametrize("count", [1, 2, 3, 8, 64])
def test_worker_slices_cover_the_range_without_overlap(count: int) -> None:
    low, high = worker_port_range(None, None)
    slices = [worker_port_range(f"gw{i}", str(count)) for i in range(count)]
    assert slices[0][0] == low and slices[-1][1] == high
    for (_, end), (start, _) in itertools.pairwise(slices):
        assert end == start
    assert all(end - start >= 100 for start, end in slices)


@pytest.mark.parametrize(
    ("worker", "count"),
    [("master", "2"), ("gw", "2"), ("gw2", "2"), ("gw0", "zero"), ("gw0", "0"), ("gw-1", "2")],
)
def test_a_worker_id_it_cannot_read_takes_the_whole_range(worker: str, count: str) -> None:
    assert worker_port_range(worker, count) == worker_port_range(None, None)
