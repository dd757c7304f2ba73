"""What a sign bus owner reports (a unit down or up, a read-back that matched or did not, a
reboot, an expired watchdog), told to the office as fault events, alerts and sign states."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from edge.config import SignConfig
from edge.drivers.sign_bus import SignBus, SignBusEvent, SignBusEventKind
from edge.pipeline.alerts import AlertBook
from edge.pipeline.outlet import Outlet
from edge.pipeline.sign_stage import SignStage
from edge.pipeline.uplink_states import utc
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertType,
    Severity,
    SignFault,
    SignRecovered,
)

log = logging.getLogger(__name__)


class SignEvents:
    def __init__(
        self,
        *,
        signs: SignStage,
        buses: Mapping[str, SignBus],
        alerts: AlertBook,
        outlet: Outlet,
        clock: Callable[[], float],
    ) -> None:
        self._signs = signs
        self._buses = buses
        self._alerts = alerts
        self._outlet = outlet
        self._clock = clock

    def on_event(self, event: SignBusEvent) -> None:
        if event.sign_id is None:
            log.info("sign bus %s: %s %s", event.bus_id, event.kind, event.reason)
            return
        _, sign = self._signs.table[event.sign_id]
        at = utc(self._clock())
        alert_id = f"sign-down-{event.sign_id}"
        if event.kind is SignBusEventKind.UNIT_DOWN:
            self._outlet.emit(
                SignFault(
                    sign_id=event.sign_id, bus=event.bus_id, unit=sign.unit, reason=event.reason
                ),
                ts=at,
            )
            self._alerts.raise_alert(
                AlertRaised(
                    alert_id=alert_id,
                    alert_type=AlertType.SIGN_DOWN,
                    severity=Severity.WARNING,
                    since=at,
                    sign_id=event.sign_id,
                    lot_id=sign.lot,
                    message=f"sign {event.sign_id} (bus {event.bus_id}, unit {sign.unit}) "
                    f"does not answer: {event.reason}",
                )
            )
        elif event.kind is SignBusEventKind.UNIT_UP:
            self._outlet.emit(
                SignRecovered(sign_id=event.sign_id, bus=event.bus_id, unit=sign.unit), ts=at
            )
            self._alerts.resolve(alert_id, "sign answers again", at)
        elif event.kind is SignBusEventKind.VERIFIED:
            wrong_id = f"sign-wrong-{event.sign_id}"
            if wrong_id in self._alerts.open:
                self._alerts.resolve(wrong_id, f"sign {event.sign_id} {event.reason}", at)
            elif not self._signs.has_news(event.sign_id):
                return  # a routine read-back that matched: last_verified moves on quietly
        else:
            self._sign_wrong(event, sign, at)
        self._signs.publish(event.sign_id)

    def _sign_wrong(self, event: SignBusEvent, sign: SignConfig, at: datetime) -> None:
        """A reboot, a read-back mismatch or an expired watchdog: report it, raise an alert."""
        assert event.sign_id is not None
        status = self._buses[event.bus_id].status(event.sign_id)
        if status.problem is None:
            return  # e.g. a fault bit that does not change what the sign shows
        self._outlet.emit(
            SignFault(
                sign_id=event.sign_id, bus=event.bus_id, unit=sign.unit, reason=status.problem
            ),
            ts=at,
        )
        since = utc(status.wrong_since) if status.wrong_since is not None else at
        self._alerts.raise_alert(
            AlertRaised(
                alert_id=f"sign-wrong-{event.sign_id}",
                alert_type=AlertType.SIGN_WRONG,
                severity=Severity.WARNING,
                since=since,
                sign_id=event.sign_id,
                lot_id=sign.lot,
                zone_id=sign.zone,
                message=f"sign {event.sign_id} (bus {event.bus_id}, unit {sign.unit}) "
                f"{status.problem}; the box is rewriting it",
            )
        )
