"""The periodic sweep (escalations, tow orders from bay dwell) in a thread of its own.

With several central processes only the one holding the ``cases-sweep`` lease sweeps.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from central.cases.service import sweep, sync_alert_cases
from central.leases import CASES_SWEEP
from central.ledger.service import sweep_bays
from site_model.site import Site

log = logging.getLogger(__name__)


def sweep_now(
    engine: Engine, site: Site, *, now: float | None = None
) -> tuple[int, dict[str, int], list[int]]:
    """One sweep: cases opened for alerts, the escalation counts, the tow orders' seqs."""
    opened = sync_alert_cases(engine, site, now=now)
    counts = sweep(engine, site, now=now)
    tows = sweep_bays(engine, site, now=now)
    return opened, counts, tows


class Sweeper:
    def __init__(self, central: Any, *, interval_s: float = 30.0) -> None:
        self.central = central
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cases-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.interval_s):
            leases = getattr(self.central, "leases", None)
            if leases is not None and not leases.holds(CASES_SWEEP):
                continue  # another process sweeps (central.leases)
            try:
                now = time.time()
                opened, counts, tows = sweep_now(self.central.engine, self.central.site, now=now)
                if opened or any(counts.values()) or tows:  # live dashboard pages re-read
                    self.central.hub.publish(
                        [{"type": "case", "sweep": True}]
                        + [{"type": "ledger", "seq": seq} for seq in tows]
                    )
                if failing:
                    log.info("case sweep works again")
                failing = False
            except Exception:
                if not failing:
                    log.exception("case sweep failed; retrying every %s s", self.interval_s)
                failing = True
