"""What occupancy noticed about a sensor (silent, heard again, implausible, unknown), told to
the office as fault events and a ``sensor_silent`` alert."""

from __future__ import annotations

import logging

from edge.agents.occupancy import SensorNotice
from edge.pipeline.alerts import AlertBook
from edge.pipeline.outlet import Outlet
from edge.pipeline.uplink_states import utc
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertType,
    SensorFault,
    SensorFaultType,
    SensorRecovered,
    Severity,
)

log = logging.getLogger(__name__)


class SensorNotices:
    def __init__(self, outlet: Outlet, alerts: AlertBook) -> None:
        self._outlet = outlet
        self._alerts = alerts

    def report(self, notice: SensorNotice) -> None:
        at = utc(notice.at)
        alert_id = f"sensor-silent-{notice.sensor_id}"
        if notice.kind == "unknown_sensor":
            log.warning("%s", notice.detail)
        elif notice.kind == "silent":
            self._outlet.emit(
                SensorFault(
                    sensor_id=notice.sensor_id,
                    bay_id=notice.bay_id,
                    fault=SensorFaultType.SILENT,
                    detail=notice.detail,
                ),
                ts=at,
            )
            self._alerts.raise_alert(
                AlertRaised(
                    alert_id=alert_id,
                    alert_type=AlertType.SENSOR_SILENT,
                    severity=Severity.WARNING,
                    since=at,
                    bay_id=notice.bay_id,
                    sensor_id=notice.sensor_id,
                    message=f"sensor {notice.sensor_id} of bay {notice.bay_id}: {notice.detail}",
                )
            )
        elif notice.kind == "recovered":
            self._outlet.emit(
                SensorRecovered(
                    sensor_id=notice.sensor_id, bay_id=notice.bay_id, fault=SensorFaultType.SILENT
                ),
                ts=at,
            )
            self._alerts.resolve(alert_id, "sensor heard again", at)
        elif notice.kind == "implausible":
            self._outlet.emit(
                SensorFault(
                    sensor_id=notice.sensor_id,
                    bay_id=notice.bay_id,
                    fault=SensorFaultType.IMPLAUSIBLE,
                    detail=notice.detail,
                ),
                ts=at,
            )
