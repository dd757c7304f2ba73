"""The broker's own counters of what it dropped, read from Mosquitto's ``$SYS`` topics.

Mosquitto 2 (Debian's 2.0.11 checked: ``mosquitto_sub -t '$SYS/#'``) publishes, retained,
every ``sys_interval`` (10 s by default) and only when a value changed:

- ``$SYS/broker/publish/messages/dropped``: publishes dropped since the broker started for
  its inflight/queue limits (``max_queued_messages``: a durable session's queue full),
  ``mosquitto(8)``;
- ``$SYS/broker/load/publish/dropped/1min``: the same, as a moving average per minute;
- ``$SYS/broker/store/messages/count``: messages the broker holds (queued for sessions,
  retained).

Central subscribes to exactly these (unshared, in every process; the ACL allows central to
read them and nothing else under ``$SYS``: ``central.provision``). Parsing is pure: a
payload that is not a number is refused with what and where, never raised into paho's
thread. The dropped count restarts at 0 with the broker; ``BrokerCounters`` keeps a total
across restarts so the metric only grows.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

DROPPED = "$SYS/broker/publish/messages/dropped"
DROPPED_1MIN = "$SYS/broker/load/publish/dropped/1min"
STORED = "$SYS/broker/store/messages/count"
SYS_TOPICS = (DROPPED, DROPPED_1MIN, STORED)


@dataclass(frozen=True, slots=True)
class SysRefused:
    """A ``$SYS`` message central cannot read: which topic, and why."""

    topic: str
    reason: str


def parse_sys(topic: str, payload: bytes) -> float | SysRefused:
    """The number a counter topic carries, or why not."""
    if topic not in SYS_TOPICS:
        return SysRefused(topic, "not a $SYS topic central reads")
    try:
        value = float(payload.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return SysRefused(topic, f"payload {payload[:40]!r} is not a number")
    if not math.isfinite(value) or value < 0:
        return SysRefused(topic, f"payload {payload[:40]!r} is not a count")
    return value


class BrokerCounters:
    """The last values the broker reported (any thread writes, any thread reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reported = False  # a dropped count has arrived since the start
        self.dropped_total = 0  # across broker restarts (a count lower than before = restart)
        self._last_dropped = 0
        self.dropped_per_min = 0.0
        self.stored = 0
        self.refused = 0

    def update(self, topic: str, payload: bytes) -> None:
        value = parse_sys(topic, payload)
        with self._lock:
            if isinstance(value, SysRefused):
                self.refused += 1
                log.warning("broker $SYS refused: %s: %s", value.topic, value.reason)
                return
            if topic == DROPPED:
                count = int(value)
                grown = count - self._last_dropped if count >= self._last_dropped else count
                self.dropped_total += grown
                self._last_dropped = count
                self.reported = True
            elif topic == DROPPED_1MIN:
                self.dropped_per_min = value
            else:
                self.stored = int(value)
