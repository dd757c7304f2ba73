"""The town's clock, when central serves a simulated town that runs faster than the wall.

The demo (``parkgrid demo``) runs the town ``speed`` times faster than the wall clock from
``sim_start`` (town time) at ``wall_start`` (wall time), and writes those three numbers in
its state file. With ``PARKGRID_TOWN_CLOCK_FILE`` pointing at it, central shows town time
on the drivers' page, forecasts on the town's clock, and maps its stored times (the boxes
stamp wall time) to town time. The file is re-read when it changes; until it holds a clock
(the demo writes it as the town starts), town time is wall time.

Without the setting (a real town), every function here is the identity on the wall clock.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Mapping:
    sim_start: float
    wall_start: float
    speed: float

    def town(self, wall: float) -> float:
        return self.sim_start + (wall - self.wall_start) * self.speed

    def wall(self, town: float) -> float:
        return self.wall_start + (town - self.sim_start) / self.speed


IDENTITY = Mapping(sim_start=0.0, wall_start=0.0, speed=1.0)


class TownClock:
    """Town time from a state file; the wall clock when there is none."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mapping = IDENTITY
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._simulated = False

    def mapping(self) -> Mapping:
        if self.path is None:
            return IDENTITY
        try:
            stat = self.path.stat()
        except OSError:
            return self._mapping
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    mapping = Mapping(
                        sim_start=float(data["sim_start"]),
                        wall_start=float(data["wall_start"]),
                        speed=float(data["speed"]),
                    )
                    if mapping.speed > 0:
                        self._mapping = mapping
                        self._simulated = True
                except (ValueError, KeyError, TypeError):
                    pass  # not written yet, or not a clock: keep the last one
            return self._mapping

    def now(self) -> float:
        """Town time now (epoch seconds)."""
        return self.mapping().town(time.time())

    def town(self, wall: float) -> float:
        return self.mapping().town(wall)

    def wall(self, town: float) -> float:
        return self.mapping().wall(town)

    @property
    def simulated(self) -> bool:
        """Whether the file has given a town clock (read now)."""
        self.mapping()
        return self._simulated

    @property
    def speed(self) -> float:
        return self.mapping().speed

    def reading(self) -> dict[str, float | bool]:
        """One reading for the pages: the town's and the wall's time now (epoch seconds),
        the speed and whether a simulated clock runs. A page maps the API's (wall) times
        with it, so no page keeps a clock of its own."""
        mapping = self.mapping()
        wall = time.time()
        return {
            "town": mapping.town(wall),
            "wall": wall,
            "speed": mapping.speed,
            "simulated": self._simulated,
        }
