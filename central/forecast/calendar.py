"""The holiday calendar file: public holidays and make-up workdays (调休), in TOML.

::

    [holidays]
    2026-10-01 = "国庆节 National Day"
    workdays = ["2026-09-20"]   # at the top level: weekend days worked

``load_calendar(path)`` returns a ``Calendar`` or raises ``CalendarError`` naming the key.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

from central.forecast.model import Calendar


class CalendarError(ValueError):
    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")
        self.where = where
        self.detail = detail


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise CalendarError(where, f"{value!r} is not a date (YYYY-MM-DD)")


def parse_calendar(data: dict[str, Any], *, source: str = "<calendar>") -> Calendar:
    holidays_table = data.get("holidays", {})
    if not isinstance(holidays_table, dict):
        raise CalendarError(f"{source}: holidays", "must be a table of date = name")
    holidays = {_date(key, f"{source}: holidays.{key}") for key in holidays_table}
    workdays_list = data.get("workdays", [])
    if not isinstance(workdays_list, list):
        raise CalendarError(f"{source}: workdays", "must be a list of dates")
    workdays = {_date(v, f"{source}: workdays.{i}") for i, v in enumerate(workdays_list)}
    unknown = set(data) - {"holidays", "workdays"}
    if unknown:
        raise CalendarError(source, f"unknown keys {sorted(unknown)}")
    return Calendar(holidays=frozenset(holidays), workdays=frozenset(workdays))


def load_calendar(path: Path | str) -> Calendar:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CalendarError(str(path), str(exc)) from exc
    return parse_calendar(data, source=str(path))
