"""Generated history and the forecaster on both stores (SQLite and PostgreSQL).

Ten bays of the small test site, eight days of a plain daily shape written as generated
history; the store answers it back as history, and the forecaster fits the lot from it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from central.forecast.model import Calendar
from central.forecast.service import Forecaster
from central.lots.generated import AlreadyGenerated, GeneratedChange, write_generated_history
from central.lots.service import occupancy_history
from site_model.site import Site

TZ = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 11, 2, tzinfo=TZ).timestamp()
DAYS = 8


def _changes(site: Site) -> list[GeneratedChange]:
    """Each day, bays 1..k arrive from 08:00 (one every 20 minutes) and all leave at 18:00."""
    bays = site.lots["P1"].bay_ids("P1")
    out = []
    for day in range(DAYS):
        t0 = START + day * 86400
        for n, bay in enumerate(bays[:8]):
            out.append(GeneratedChange(t0 + 8 * 3600 + n * 1200, bay, True))
        for bay in bays[:8]:
            out.append(GeneratedChange(t0 + 18 * 3600, bay, False))
    return out


def test_generated_history_reads_back_and_trains_the_forecaster(engine: Engine, site: Site) -> None:
    end = START + DAYS * 86400
    written = write_generated_history(
        engine, site, _changes(site), until=end, source="tests", since=START
    )
    bays = len(site.lots["P1"].bay_ids("P1")) + len(site.lots["P2"].bay_ids("P2"))
    assert written == bays + DAYS * 16  # every lot bay known from the start
    noon = dt.datetime.fromtimestamp(START + 3 * 86400 + 12 * 3600, dt.UTC)
    later = noon + dt.timedelta(minutes=1)
    history = occupancy_history(engine, lot_id="P1", start=noon, end=later, step_s=60)
    assert history.points[0].occupied == 8 and history.points[0].free == 2
    with pytest.raises(AlreadyGenerated):
        write_generated_history(engine, site, _changes(site), until=end, source="tests")
    forecaster = Forecaster(engine, site, calendar=Calendar(), clock=lambda: end)
    forecaster.run_once()
    assert "P1" in forecaster.models and forecaster.models["P1"].days >= 7
    assert forecaster.of("P1")["status"] == "no_data"  # its box never reported live figures
    assert "P2" in forecaster.models  # always empty is history too (a quiet lot)
