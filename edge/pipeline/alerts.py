"""The box's open alerts (a sensor silent, a sign down or wrong): raised once, resolved once.

An alert is emitted as an ``AlertRaised`` event when it opens and an ``AlertResolved`` when
it ends; a second raise of an open alert, or a resolve of one not open, says nothing.
"""

from __future__ import annotations

from datetime import datetime

from edge.pipeline.outlet import Outlet
from firmware_protocols.uplink.models import AlertRaised, AlertResolved


class AlertBook:
    def __init__(self, outlet: Outlet) -> None:
        self._outlet = outlet
        self.open: dict[str, AlertRaised] = {}

    def raise_alert(self, alert: AlertRaised) -> None:
        if alert.alert_id in self.open:
            return
        self.open[alert.alert_id] = alert
        self._outlet.emit(alert, ts=alert.since)

    def resolve(self, alert_id: str, message: str, at: datetime) -> None:
        alert = self.open.pop(alert_id, None)
        if alert is None:
            return
        self._outlet.emit(
            AlertResolved(
                alert_id=alert_id,
                alert_type=alert.alert_type,
                since=alert.since,
                message=message,
                lot_id=alert.lot_id,
                zone_id=alert.zone_id,
                bay_id=alert.bay_id,
                sign_id=alert.sign_id,
                sensor_id=alert.sensor_id,
            ),
            ts=at,
        )
