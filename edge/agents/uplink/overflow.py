"""The outbox's overflow, told to central as events: one alert per episode, one
``EventsDropped`` per dropped range (marked reported in the commit that carries it), and the
alert resolved when the events lane is back under half its cap."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pydantic import BaseModel

from edge.outbox import Outbox
from firmware_protocols.uplink import AlertRaised, AlertResolved, EventsDropped
from firmware_protocols.uplink.models import AlertType, Severity


class OverflowReports:
    """Call ``report()`` after each commit; it emits what the outbox has not told yet."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        emit: Callable[[BaseModel, dt.datetime], int],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._outbox = outbox
        self._emit = emit
        self._clock = clock
        self._was_active = outbox.overflow_active

    def report(self) -> None:
        outbox = self._outbox
        now = self._clock()
        alert_id = f"outbox-overflow-{outbox.overflow_episodes}"
        if outbox.take_episode_start():
            self._emit(
                AlertRaised(
                    alert_id=alert_id,
                    alert_type=AlertType.OUTBOX_OVERFLOW,
                    severity=Severity.CRITICAL,
                    since=now,
                    message=(
                        f"outbox events lane passed its cap of {outbox.events_max_bytes} bytes; "
                        "oldest unacked events are being dropped"
                    ),
                ),
                now,
            )
        for drop in outbox.unreported_drops():
            self._emit(
                EventsDropped(
                    first_seq=drop.first_seq,
                    last_seq=drop.last_seq,
                    count=drop.count,
                    total=outbox.dropped_events_total,
                ),
                now,
            )
            outbox.mark_reported(drop)
        if self._was_active and not outbox.overflow_active:
            self._emit(
                AlertResolved(
                    alert_id=alert_id,
                    alert_type=AlertType.OUTBOX_OVERFLOW,
                    since=now,
                    message="outbox events lane back under half its cap",
                ),
                now,
            )
        self._was_active = outbox.overflow_active
