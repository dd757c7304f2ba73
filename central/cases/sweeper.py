"""The periodic sweep (escalations, tow orders from bay dwell) in a thread of its own.

With several central processes only the one holding the ``cases-sweep`` lease sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from central.cases.service import sweep, sync_alert_cases
from central.leases import CASES_SWEEP
from central.leases.job import LeasedJob
from central.ledger.service import sweep_bays
from site_model.site import Site


def sweep_now(
    engine: Engine,
    site: Site,
    *,
    now: float | None = None,
    town_speed: float = 1.0,
    towns: Mapping[str, Site] | None = None,
    grids: frozenset[str] | None = None,
) -> tuple[int, dict[str, int], list[int]]:
    """One sweep: cases opened for alerts, the escalation counts, the tow orders' seqs.

    ``town_speed`` is the town clock's (``Central.town``): limits and the bays' dwell are
    town time (:func:`central.cases.service.open_case`, :func:`sweep_bays`). ``towns``: a
    county's, each swept by its own ``[duty]`` and rules over its own boxes and bays (the
    escalations go by the due times stored with each case, whatever its town). ``grids``:
    escalate only these grids' cases (a sweep asked in a county town's view)."""
    if not towns:
        opened = sync_alert_cases(engine, site, now=now, town_speed=town_speed)
        counts = sweep(engine, site, now=now)
        tows = sweep_bays(engine, site, now=now, town_speed=town_speed)
        return opened, counts, tows
    opened = 0
    tows = []
    for town in towns.values():
        boxes = frozenset(town.boxes)
        opened += sync_alert_cases(engine, town, now=now, town_speed=town_speed, boxes=boxes)
        tows += sweep_bays(engine, town, now=now, town_speed=town_speed, site_bays_only=True)
    return opened, sweep(engine, site, now=now, grids=grids), tows


def county_towns(central: Any) -> dict[str, Site] | None:
    """A county's towns by id, for :func:`sweep_now` (None for a single town)."""
    if not getattr(central, "is_county", False):
        return None
    return {town_id: town.site for town_id, town in central.towns.items()}


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
        central = self.central
        opened, counts, tows = sweep_now(
            central.engine,
            central.site,
            now=time.time(),
            town_speed=central.town.speed,
            towns=county_towns(central),
        )
        if opened or any(counts.values()) or tows:  # live dashboard pages re-read
            self.central.hub.publish(
                [{"type": "case", "sweep": True}] + [{"type": "ledger", "seq": seq} for seq in tows]
            )
