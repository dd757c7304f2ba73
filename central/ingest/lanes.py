"""Central's ingest queue in two lanes: live first, a box's replayed backlog after it.

Theory of operation
-------------------
A box marks every event it sends from its outbox backlog (a replay after an outage, a
resend) ``"historical": true`` and everything else live (docs/edge-uplink.md). paho's
thread files each message into one of two lanes with a byte search on the payload, never
a decode: the box's envelope and pydantic both write the flag compactly as
``"historical":true`` (a document that says it any other way is filed live, which only
costs it its place in the queue). The batcher takes live messages first and fills the rest
of the batch from the backlog, so a box replaying 200,000 events no longer holds every
other box's live events behind it (issue 17 finding 3). The backlog is never starved: every
batch not filled by live messages takes backlog ones.

Order within a box does not matter to the store: events are unique on (box, seq), the
watermark waits at a hole, and state documents are applied newest first by their ``ts``.

With several processes on an ingest group a replaying box's backlog is split over them,
and each process's writer takes its turn on the box (``events.hold_boxes``): a batch that
held live and backlog together waited for the other process, and so did every batch
queued behind it in the writer's pipe. There each lane has its own batcher and writer
process (``LaneReader``; ``central.ingest.mqtt``): a live batch never holds backlog and
never waits behind it.

What the lanes cannot do: once both together hold ``queue_max`` messages paho's thread
stops reading (back-pressure) and a live message waits in the broker's queue behind the
backlog ahead of it. The box's send window bounds that backlog (docs/scale.md, "Live first
at central").
"""

from __future__ import annotations

import collections

from central.ingest.batch import RawMessage

HISTORICAL = b'"historical":true'


def is_backlog(topic: str, payload: bytes) -> bool:
    """Whether a message is a box's replayed backlog: an event sent ``historical``."""
    return topic.endswith("/event") and HISTORICAL in payload


class Lanes:
    """Two FIFO lanes, live and backlog. One thread appends (paho's), one takes (the
    batcher's): ``collections.deque`` appends and pops are atomic."""

    def __init__(self) -> None:
        self.live: collections.deque[RawMessage] = collections.deque()
        self.backlog: collections.deque[RawMessage] = collections.deque()
        self.backlog_total = 0  # messages filed as backlog since the start

    def append(self, message: RawMessage) -> bool:
        """File a message in its lane; True if it went to the backlog."""
        if is_backlog(message[0], message[1]):
            self.backlog.append(message)
            self.backlog_total += 1
            return True
        self.live.append(message)
        return False

    def take(self, limit: int) -> list[RawMessage]:
        """Up to ``limit`` messages: live ones first, then backlog, each lane in order."""
        batch: list[RawMessage] = []
        for lane in (self.live, self.backlog):
            count = min(len(lane), limit - len(batch))
            popleft = lane.popleft
            batch.extend(popleft() for _ in range(count))
        return batch

    def __len__(self) -> int:
        return len(self.live) + len(self.backlog)

    def __bool__(self) -> bool:
        return bool(self.live) or bool(self.backlog)


class LaneReader:
    """What one batcher takes from: the live lane, the backlog lane, or both (live first)."""

    def __init__(self, lanes: Lanes, which: str) -> None:
        if which not in ("live", "backlog", "both"):
            raise ValueError(f"no lane {which!r}: live, backlog or both")
        self.lanes = lanes
        self.which = which

    def take(self, limit: int) -> list[RawMessage]:
        if self.which == "both":
            return self.lanes.take(limit)
        lane = self.lanes.live if self.which == "live" else self.lanes.backlog
        count = min(len(lane), limit)
        popleft = lane.popleft
        return [popleft() for _ in range(count)]

    def __len__(self) -> int:
        if self.which == "both":
            return len(self.lanes)
        return len(self.lanes.live if self.which == "live" else self.lanes.backlog)

    def __bool__(self) -> bool:
        return len(self) > 0
