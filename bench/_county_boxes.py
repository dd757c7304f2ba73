"""The county's boxes: the real box uplink (``edge.agents.uplink.Uplink`` over its
``Outbox``), many per process, over TLS with each box's password, publishing what a box
publishes for a car: the ``bay_changed`` event (outbox, seq line, QoS 1), the bay's state
and its lot's state (retained).

``box_worker`` runs in a child process (``multiprocessing``) and obeys the parent's
commands on a queue:

- ``("rate", multiplier, phase)``: every box emits at ``multiplier`` x its busy-hour rate;
  each event's lag (emit to the ack that covers it) is filed under ``phase``;
- ``("oldest",)``: the emit time of the oldest event not yet acked (None: all acked);
- ``("report",)``: lags per phase, each box's last seq and acked seq;
- ``("stop",)``: stop the uplinks.

``replay_worker`` is one box coming back with N events buffered in its outbox: on
``("go",)`` it connects and drains, then answers ``("drained", seconds)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.agents.uplink import Uplink
from edge.config import EdgeConfig, MqttConfig, OutboxConfig
from edge.outbox import Outbox
from firmware_protocols.uplink import (
    BayChanged,
    BayState,
    BoxStatus,
    Command,
    CommandReply,
    LotState,
    Topics,
)
from firmware_protocols.uplink.models import (
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    LotStatus,
    Online,
    OutboxHealth,
    SensorsHealth,
    Trend,
)

TICK_S = 0.05  # emit step
POLL_S = 0.02  # how often acks are read: the lag's resolution


@dataclass(frozen=True, slots=True)
class BoxPlan:
    box_id: str
    rate: float  # bay changes per second at 1x
    bays: tuple[tuple[str, str | None, str | None], ...]  # (bay, its lot, its zone)
    lot_id: str | None  # the lot whose state the box publishes (None: a stall box)


@dataclass(frozen=True, slots=True)
class Link:
    site_id: str
    url: str  # mqtts://localhost:PORT
    ca: Path
    password_file: Path
    work: Path
    per_town: bool = False  # under --county each box's topics carry its town's id

    def site_of(self, box_id: str) -> str:
        return box_id.split("-", 1)[0] if self.per_town else self.site_id


def make_uplink(link: Link, box_id: str, sensors: int, states: Any) -> tuple[Uplink, Outbox]:
    """One box's uplink and outbox, as ``parkgrid edge run`` wires them (no pipeline)."""
    config = EdgeConfig(
        site=link.site_of(box_id),
        box_id=box_id,
        data_dir=link.work / box_id,
        mqtt=MqttConfig(url=link.url, ca_file=link.ca, username=box_id,
                        password_file=link.password_file, max_inflight=1000),
        outbox=OutboxConfig(),
    )  # fmt: skip
    outbox = Outbox.for_box(data_dir=config.data_dir, boot_id=uuid.uuid4(),
                            events_max_bytes=1 << 28, state_max_bytes=1 << 22)  # fmt: skip

    def birth() -> BoxStatus:
        return BoxStatus(
            box_id=box_id, state=Online.ONLINE, boot_id=outbox.boot_id,
            ts=dt.datetime.now(dt.UTC), software_version="bench", config_hash="sha256:bench",
            sensor_count=sensors, clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(state=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 22),
                                    event=LaneHealth(depth=0, bytes=0, cap_bytes=1 << 28)),
                sensors=SensorsHealth(total=sensors),
            ),
        )  # fmt: skip

    async def on_command(command: Command) -> CommandReply:
        return CommandReply(command_id=command.command_id, command=command.name, ok=True,
                            ts=dt.datetime.now(dt.UTC))  # fmt: skip

    uplink = Uplink(
        config=config, outbox=outbox, boot_id=outbox.boot_id, birth=birth, states=states,
        on_command=on_command, on_remote_lot=lambda b, s: None,
        on_remote_box=lambda b, u: None, on_connection=lambda u: None,
    )  # fmt: skip
    return uplink, outbox


@dataclass
class Box:
    """One live box: its bays' states, its uplink, and its events waiting for an ack."""

    plan: BoxPlan
    link: Link
    occupied: set[str] = field(default_factory=set)
    pending: deque[tuple[int, float, str]] = field(default_factory=deque)
    carry: float = 0.0
    last_seq: int = 0

    def __post_init__(self) -> None:
        self.topics = Topics(self.link.site_of(self.plan.box_id), self.plan.box_id)
        self.uplink, self.outbox = make_uplink(
            self.link, self.plan.box_id, len(self.plan.bays), self._states
        )
        self.rng = random.Random(self.plan.box_id)
        self.carry = self.rng.random()  # boxes of one role do not all emit at once

    def _lot(self, now: dt.datetime) -> LotState:
        capacity, occupied = len(self.plan.bays), len(self.occupied)
        free = capacity - occupied
        status = LotStatus.SPACES_AVAILABLE if free else LotStatus.FULL
        return LotState(lot_id=self.plan.lot_id, capacity=capacity, free=free,
                        occupied=occupied, unknown=0, closed=0, status=status,
                        trend=Trend.STEADY, ts=now)  # fmt: skip

    def _states(self) -> list[tuple[str, BaseModel]]:
        if self.plan.lot_id is None:
            return []
        return [(self.topics.lot(self.plan.lot_id), self._lot(dt.datetime.now(dt.UTC)))]

    def change(self, phase: str) -> None:
        """One car arrives at or leaves a bay: event, bay state, lot state."""
        bay, lot_id, zone_id = self.rng.choice(self.plan.bays)
        was = bay in self.occupied
        (self.occupied.discard if was else self.occupied.add)(bay)
        frm, to = BayOccupancy.OCCUPIED, BayOccupancy.FREE
        if not was:
            frm, to = to, frm
        now = dt.datetime.now(dt.UTC)
        seq = self.uplink.emit(
            BayChanged(bay_id=bay, lot_id=lot_id, zone_id=zone_id, from_state=frm,
                       to_state=to, sensor_ts=now),
            ts=now,
        )  # fmt: skip
        self.pending.append((seq, now.timestamp(), phase))
        self.last_seq = max(self.last_seq, seq)
        self.uplink.publish_state(
            self.topics.bay(bay),
            BayState(bay_id=bay, lot_id=lot_id, zone_id=zone_id, state=to, since=now, ts=now),
        )  # fmt: skip
        if self.plan.lot_id is not None:
            self.uplink.publish_state(self.topics.lot(self.plan.lot_id), self._lot(now))


def box_worker(plans: list[BoxPlan], link: Link, spread_s: float, ctl: Any, out: Any) -> None:
    """The boxes come up over ``spread_s`` seconds, as a county's do, not all at once: a
    box's connect gets every retained status and lot state its subscriptions match."""
    logging.getLogger("edge").setLevel(logging.ERROR)  # reconnects are counted, not logged
    asyncio.run(_boxes(plans, link, spread_s, ctl, out))


async def _boxes(plans: list[BoxPlan], link: Link, spread_s: float, ctl: Any, out: Any) -> None:
    boxes = [Box(plan, link) for plan in plans]

    async def start(box: Box, delay: float) -> None:
        await asyncio.sleep(delay)
        await box.uplink.run()

    runs = [
        asyncio.create_task(start(box, spread_s * i / len(boxes))) for i, box in enumerate(boxes)
    ]
    lags: dict[str, list[tuple[float, float]]] = {}  # phase -> (emitted at, lag)
    state = {"mult": 0.0, "phase": "idle", "stop": False}

    async def emit() -> None:
        tick = time.monotonic()
        while not state["stop"]:
            for box in boxes:
                box.carry += box.plan.rate * float(state["mult"]) * TICK_S
                while box.carry >= 1:
                    box.carry -= 1
                    box.change(str(state["phase"]))
            tick += TICK_S
            await asyncio.sleep(max(0.0, tick - time.monotonic()))

    async def acks() -> None:
        while not state["stop"]:
            now = time.time()
            for box in boxes:
                acked = box.uplink.acked_seq
                while box.pending and box.pending[0][0] <= acked:
                    _, at, phase = box.pending.popleft()
                    lags.setdefault(phase, []).append((at, now - at))
            await asyncio.sleep(POLL_S)

    tasks = [asyncio.create_task(emit()), asyncio.create_task(acks())]
    loop = asyncio.get_running_loop()
    out.put(("ready", len(boxes)))
    while True:
        cmd = await loop.run_in_executor(None, ctl.get)
        if cmd[0] == "rate":
            state["mult"], state["phase"] = cmd[1], cmd[2]
        elif cmd[0] == "connected":
            out.put(sum(box.uplink.connected for box in boxes))
        elif cmd[0] == "oldest":
            waiting = [box.pending[0][1] for box in boxes if box.pending]
            out.put(min(waiting) if waiting else None)
        elif cmd[0] == "report":
            out.put(
                {
                    "lags": lags,
                    "boxes": {b.plan.box_id: (b.last_seq, b.uplink.acked_seq) for b in boxes},
                    "connects": sum(b.uplink.stats().connects for b in boxes),
                    "resends": sum(b.uplink.stats().resends for b in boxes),
                }
            )
        elif cmd[0] == "stop":
            break
    state["stop"] = True
    await asyncio.gather(*tasks)
    for box in boxes:
        await box.uplink.stop()
    for run in runs:
        with contextlib.suppress(Exception):
            await run
    for box in boxes:
        box.outbox.close()
    out.put("stopped")


def replay_worker(plan: BoxPlan, link: Link, events: int, ctl: Any, out: Any) -> None:
    """``plan``'s box with ``events`` bay changes buffered (an outage's worth), drained on
    ``("go",)``; the outbox marks them ``historical`` as the real box does."""
    asyncio.run(_replay(plan, link, events, ctl, out))


async def _replay(plan: BoxPlan, link: Link, events: int, ctl: Any, out: Any) -> None:
    uplink, outbox = make_uplink(link, plan.box_id, len(plan.bays), list)
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    for i in range(events):
        to = BayOccupancy.OCCUPIED if i % 2 == 0 else BayOccupancy.FREE
        frm = BayOccupancy.FREE if i % 2 == 0 else BayOccupancy.OCCUPIED
        at = when + dt.timedelta(milliseconds=i)
        bay, lot_id, zone_id = plan.bays[(i // 2) % len(plan.bays)]
        uplink.emit(
            BayChanged(bay_id=bay, lot_id=lot_id, zone_id=zone_id, from_state=frm,
                       to_state=to, sensor_ts=at),
            ts=at,
        )  # fmt: skip
    outbox.flush()
    out.put(("ready", events))
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, ctl.get) == ("go",)
    task = asyncio.create_task(uplink.run())
    started = time.monotonic()
    while outbox.depth() or uplink.acked_seq < events:
        await asyncio.sleep(0.05)
        if time.monotonic() - started > 1800:
            break
    elapsed = time.monotonic() - started
    await uplink.stop()
    with contextlib.suppress(Exception):
        await task
    outbox.close()
    out.put(("drained", elapsed, uplink.acked_seq))
