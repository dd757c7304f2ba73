"""The uplink's figures (``Uplink.stats()``), read by the box's health page and the tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from edge.outbox import Outbox
from firmware_protocols.uplink.models import LaneHealth, OutboxHealth


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkStats:
    connected: bool
    connects: int
    disconnects: int
    events_published: int
    states_published: int
    resends: int
    acked_seq: int
    last_seq: int
    outbox_depth: int
    outbox_bytes: int
    oldest_event_age_s: float | None
    dropped_events_total: int
    commands_handled: int
    commands_refused: int
    commands_repeated: int
    bad_messages: int
    seq_advances: int = 0
    """Times central's watermark was ahead of the outbox and its events were renumbered."""
    acks_refused: int = 0
    """Acks above the outbox's last committed seq, refused (nothing deleted)."""
    connect_failures: int = 0
    """Sessions that could not be opened or ended in an error."""
    backoff_s: float = 0.0
    """The current wait before the next connect attempt (0: connected, or reset)."""
    path_probes: int = 0
    """TCP probes of the broker's address made while backing off."""
    network_returns: int = 0
    """Back-offs cut short because the broker's address answered again after it did not."""
    send_window: int = 0
    """Events that may be outstanding above central's watermark (shrinks on a resend)."""


def outbox_health(outbox: Outbox, now: dt.datetime) -> OutboxHealth:
    """The outbox part of the box's health summary (for the birth and /healthz)."""
    stats = outbox.stats()
    return OutboxHealth(
        state=LaneHealth(
            depth=stats.state_depth, bytes=stats.state_bytes, cap_bytes=outbox.state_max_bytes
        ),
        event=LaneHealth(
            depth=stats.depth + stats.queued,
            bytes=stats.bytes,
            cap_bytes=outbox.events_max_bytes,
        ),
        oldest_event_age_s=outbox.oldest_age(now),
        dropped_events_total=stats.dropped_events_total,
    )
