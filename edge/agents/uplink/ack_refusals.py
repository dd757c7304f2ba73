"""Acks the box does not believe (above its last committed seq on a line central already
acked, or one that would overflow the seq line): a protocol error, logged once per kind,
counted, and alerted once (``ack_refused``, critical) until central's next sane ack resolves
it. Nothing is deleted on such an ack and the box's own watermark stays."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from pydantic import BaseModel

from firmware_protocols.uplink import AlertRaised, AlertResolved
from firmware_protocols.uplink.models import AlertType, Severity


class AckRefusals:
    def __init__(
        self,
        *,
        ack_topic: str,
        emit: Callable[[BaseModel, dt.datetime], int],
        bad: Callable[[str, str, str], None],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._ack_topic = ack_topic
        self._emit = emit
        self._bad = bad
        self._clock = clock
        self._open_alert: str | None = None
        self.refused = 0

    def refuse(self, reason: str) -> None:
        self.refused += 1
        self._bad("ack-refused", self._ack_topic, reason)
        if self._open_alert is None:
            now = self._clock()
            self._open_alert = f"ack-refused-{uuid.uuid4().hex[:12]}"
            self._emit(
                AlertRaised(
                    alert_id=self._open_alert,
                    alert_type=AlertType.ACK_REFUSED,
                    severity=Severity.CRITICAL,
                    since=now,
                    message=reason[:500],
                ),
                now,
            )

    def sane(self, acked: int) -> None:
        """Central's watermark moved within the box's seqs: resolve the open alert, if any."""
        if self._open_alert is None:
            return
        alert_id, self._open_alert = self._open_alert, None
        now = self._clock()
        self._emit(
            AlertResolved(
                alert_id=alert_id,
                alert_type=AlertType.ACK_REFUSED,
                since=now,
                message=f"central's ack watermark is back within this box's seqs ({acked})",
            ),
            now,
        )
