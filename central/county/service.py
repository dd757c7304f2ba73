"""Each town's figures for the county overview, read in a few statements for all towns.

Per town: lots, bays free / occupied / unknown (the lots' live figures, by the availability
rule), boxes online of boxes, open cases (by the town's grids), and a sparkline: the share
of known bays occupied at each hour of the last day, from the history rollups
(``central.history.read.lots_at``: one pass for every lot).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select

from central.cases.workflow import OPEN_STATES
from central.db import schema as t
from central.history.read import lots_at
from central.lots.service import list_lots
from site_model.site import Site

HOUR = 3600
SPARK_HOURS = 24


def spark_start(now: float, hours: int = SPARK_HOURS) -> int:
    """The first sample of a sparkline ending at ``now``'s hour (whole hours)."""
    return int(now // HOUR) * HOUR - (hours - 1) * HOUR


def occupied_share(series: list[list[int]]) -> float | None:
    """Occupied / (free + occupied) of summed (free, occupied, unknown, closed) counts."""
    free, occupied = series[0], series[1]
    known = free + occupied
    return round(occupied / known, 3) if known else None


def overview(
    engine: Engine, towns: Mapping[str, Site], *, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    start = spark_start(now)
    lots = {lot.id: lot for lot in list_lots(engine)}
    with engine.connect() as conn:
        online = dict(conn.execute(select(t.boxes.c.box_id, t.boxes.c.online)).all())
        open_by_grid = dict(
            conn.execute(
                select(t.cases.c.grid_id, func.count())
                .where(t.cases.c.state.in_(sorted(OPEN_STATES)))
                .group_by(t.cases.c.grid_id)
            ).all()
        )
        series = lots_at(conn, start, HOUR, SPARK_HOURS)
    out = []
    for town_id, site in towns.items():
        own = [lots[lot_id] for lot_id in site.lots if lot_id in lots]
        spark = []
        for i in range(SPARK_HOURS):
            summed = [0, 0, 0, 0]
            for lot_id in site.lots:
                for k, v in enumerate(series.get(lot_id, [[0, 0, 0, 0]] * SPARK_HOURS)[i]):
                    summed[k] += v
            spark.append(occupied_share([summed[0], summed[1]]))
        out.append(
            {
                "id": town_id,
                "name": site.site.name,
                "lots": len(site.lots),
                "capacity": sum(lot.capacity for lot in own),
                "free": sum(lot.free or 0 for lot in own),
                "occupied": sum(lot.occupied or 0 for lot in own),
                "unknown": sum(lot.unknown or 0 for lot in own),
                "boxes": len(site.boxes),
                "boxes_online": sum(1 for box in site.boxes if online.get(box)),
                "open_cases": sum(int(open_by_grid.get(grid, 0)) for grid in site.grids),
                "sparkline": {"start": start, "step_s": HOUR, "occupied_share": spark},
            }
        )
    return {"towns": out, "at": now}
