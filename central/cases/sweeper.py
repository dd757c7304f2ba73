"""The periodic sweep (escalations, tow orders from bay dwell) in a thread of its own.

With several central processes only the one holding the ``cases-sweep`` lease sweeps.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine

from central.cases.service import sweep, sync_alert_cases
from central.leases import CASES_SWEEP
from central.leases.job import LeasedJob
from central.ledger.service import sweep_bays
from site_model.site import Site


def sweep_now(
    engine: Engine, site: Site, *, now: float | None = None, town_speed: float = 1.0
) -> tuple[int, dict[str, int], list[int]]:
    """One sweep: cases opened for alerts, the escalation counts, the tow orders' seqs.

    ``town_speed`` is the town clock's (``Central.town``): limits and the bays' dwell are
    town time (:func:`central.cases.service.open_case`, :func:`sweep_bays`)."""
    opened = sync_alert_cases(engine, site, now=now, town_speed=town_speed)
    counts = sweep(engine, site, now=now)
    tows = sweep_bays(engine, site, now=now, town_speed=town_speed)
    return opened, counts, tows


class Sweeper:
    """The case sweep every ``interval_s`` in the process holding the ``cases-sweep`` lease
    (every process on SQLite, where there is one)."""

    def __init__(self, central: Any, *, interval_s: float = 30.0) -> None:
        self.central = central
        self.interval_s = interval_s
        self._job = LeasedJob(
            "cases-sweeper", self.sweep_once, interval_s=interval_s, holds=self._holds
        )

    def start(self) -> Sweeper:
        self._job.start()
        return self

    def stop(self) -> None:
        self._job.stop()

    def _holds(self) -> bool:
        leases = getattr(self.central, "leases", None)
        return leases is None or bool(leases.holds(CASES_SWEEP))  # else another process sweeps

    def sweep_once(self) -> None:
        opened, counts, tows = sweep_now(
            self.central.engine,
            self.central.site,
            now=time.time(),
            town_speed=self.central.town.speed,
        )
        if opened or any(counts.values()) or tows:  # live dashboard pages re-read
            self.central.hub.publish(
                [{"type": "case", "sweep": True}] + [{"type": "ledger", "seq": seq} for seq in tows]
            )
