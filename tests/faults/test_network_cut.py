"""Scenario 4: the network between one box and the broker cut for longer than the keep-alive.

The box runs in a network namespace of its own, joined to the host by a veth pair on a
private /30 used only here; the cut is ``ip link set ... down`` on the host end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulators.broker import MosquittoBroker, free_port
from tests.faults.rig import rig, run_with_fault, soak_factor
from tests.faults.test_broker_central import assert_clean

# A whole rig (broker, central, boxes) through a fault, 10-20 s each: `make test-long`.
pytestmark = pytest.mark.long

KEEPALIVE_S = 5
CUT_S = 2 * KEEPALIVE_S  # the broker gives up after 1.5 keep-alives; the box after one ping
SECONDS = max(CUT_S + 6.0, 6.0 * soak_factor())
RATE = 20.0 * min(soak_factor(), 5)
HOST_IP, BOX_IP = "10.231.77.1", "10.231.77.2"  # a private /30, only inside this test


@dataclass(frozen=True, slots=True)
class Netns:
    name: str
    host_if: str

    def cut(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_if, "up")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def box_netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (scenario 4 runs as root in CI)")
    tag = uuid.uuid4().hex[:6]
    ns = Netns(name=f"pgf-{tag}", host_if=f"pgh{tag}")
    peer = f"pgb{tag}"
    try:
        _ip("netns", "add", ns.name)
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns.name)
        _ip("addr", "add", f"{HOST_IP}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("netns", "exec", ns.name, "ip", "addr", "add", f"{BOX_IP}/30", "dev", peer)
        _ip("netns", "exec", ns.name, "ip", "link", "set", peer, "up")
        _ip("netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns.name], check=False, capture_output=True)


async def test_faults_network_cut_longer_than_keepalive(tmp_path: Path) -> None:
    """A box cut off past its keep-alive: it holds its events and delivers each once after."""
    with box_netns() as ns:
        outer = free_port(HOST_IP)
        broker = MosquittoBroker(
            workdir=tmp_path / "broker", extra_config=[f"listener {outer} {HOST_IP}"]
        ).start()
        try:
            async with rig(
                tmp_path,
                broker=broker,
                keepalive_s=KEEPALIVE_S,
                wraps={0: ["ip", "netns", "exec", ns.name]},
                mqtt_urls={0: f"mqtt://{HOST_IP}:{outer}"},
            ) as r:
                victim = r.boxes[0]

                async def fault() -> dict[str, object]:
                    ns.cut()
                    try:
                        # The broker declares the box dead (its Last Will) while cut off.
                        await r.wait(
                            lambda: not r.central.box_row(victim.plan.box_id)[1],
                            within=4 * KEEPALIVE_S,
                            what="central seeing the cut-off box offline",
                        )
                        await asyncio.sleep(max(0.0, CUT_S - 1.5 * KEEPALIVE_S))
                        held = victim.outbox()[1]
                    finally:
                        ns.restore()
                    return {"cut_s": CUT_S, "keepalive_s": KEEPALIVE_S, "held_at_box": held}

                run = await run_with_fault(
                    r,
                    scenario="4 network cut > keep-alive",
                    fault=fault,
                    seconds=SECONDS,
                    rate=RATE,
                )
                assert r.central.box_row(victim.plan.box_id)[1], "the box is online again"
        finally:
            broker.close()
    assert_clean(run)
    assert int(str(run.extra["held_at_box"])) > 0
