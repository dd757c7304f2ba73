"""The sign simulators' display log: one JSON line per change of what a sign shows.

::

    {"wall": 1733480000.123, "unit": 1, "sign": "P1-ENTRANCE", "shown": "P1 37 ← green",
     "why": "write"}

``why`` is ``start``, ``write`` (a Modbus write changed it), ``watchdog`` (stamped at the
moment the watchdog expired, by the sign's clock, not when it was noticed), ``reboot`` or
``clock``. ``wall`` comes from ``wall()`` (default ``time.time``), the clock of the town's
truth timeline, so the two can be compared (``bench/field_truth.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

__all__ = ["DisplayLog"]


class DisplayLog:
    """Appends a line whenever a unit's face differs from the last one logged for it."""

    def __init__(
        self,
        path: Path,
        names: Mapping[int, str] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._out = path.open("a", encoding="utf-8")
        self._names = dict(names or {})
        self._wall = wall
        self._logged: dict[int, str] = {}

    def note(
        self, faces: Iterable[tuple[int, str, float | None]], *, now: float, why: str | None
    ) -> None:
        """``faces``: (unit, shown text, watchdog expiry by the sign's clock or None);
        ``now``: the sign's clock. Without ``why``, an expired watchdog is ``watchdog``
        (stamped with its expiry) and any other change ``clock``."""
        if self._out.closed:
            return
        wall = self._wall()
        for unit_id, text, expiry in faces:
            if self._logged.get(unit_id) == text:
                continue
            self._logged[unit_id] = text
            at, cause = wall, why or "clock"
            if why is None and expiry is not None and now >= expiry:
                at, cause = wall - (now - expiry), "watchdog"
            record = {
                "wall": round(at, 4),
                "unit": unit_id,
                "sign": self._names.get(unit_id, str(unit_id)),
                "shown": text,
                "why": cause,
            }
            self._out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.close()
