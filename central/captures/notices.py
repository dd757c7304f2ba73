"""What the dashboard hears after captures are stored or confirmed: ledger entries, tow
cases, held captures, and a camera's clock alert (with the case it may open)."""

from __future__ import annotations

import logging
from typing import Any

from central.captures import clock
from central.cases.service import sync_alert_cases

log = logging.getLogger(__name__)


def publish_results(central: Any, results: list[dict[str, Any]]) -> None:
    """Tell the dashboard's ledger and cases pages about new entries."""
    notices = [
        {"type": "ledger", "seq": o["seq"], "rule_id": o["rule"], "outcome": o["outcome"]}
        for result in results
        for o in result["outcomes"]
        if o.get("seq") is not None
    ]
    # A tow order opens a case for the place's grid in the same transaction.
    notices += [
        {"type": "case", "ledger_seq": n["seq"]} for n in notices if n["rule_id"] == "left_for_days"
    ]
    # A held capture: the Cameras page re-reads. A camera's clock alert raised or resolved:
    # cases for it (when the site's duty asks), and the alerts page re-reads.
    notices += [
        {"type": "capture_held", "capture_id": r["capture_id"], "camera_id": r.get("camera_id")}
        for r in results
        if r.get("held") and not r.get("duplicate")
    ]
    for result in results:
        change = result.get("clock_alert")
        if change and result.get("camera_id"):
            box_id, alert_id = clock.alert_key(result["camera_id"])
            notices.append(
                {
                    "type": f"alert_{change}",
                    "box_id": box_id,
                    "alert_id": alert_id,
                    "alert_type": clock.ALERT_TYPE,
                }
            )
            try:
                sync_alert_cases(
                    central.engine,
                    central.site,
                    keys=[(box_id, alert_id)],
                    town_speed=central.town.speed,
                )
            except Exception:  # the periodic sweep opens it later
                log.exception("opening a case for camera %s's clock alert failed", box_id)
    if notices:
        central.hub.publish(notices)
