"""The log set-up of the long-running commands (``central serve``, ``edge run``): set once.

One JSON object per line on standard error (python-json-logger's formatter on the standard
``logging`` module): ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, any
``extra={...}`` fields of the call, and ``exc_info`` with the whole traceback as one string.
JSON rather than key=value because a message or a traceback keeps its newlines inside one
line (a log shipper never splits a record, an attacker cannot forge a line with a newline in
a user name) and journald, Loki or ``jq`` read it with no parsing rules of ours.

While a simulated town's clock runs (the demo hands ``PARKGRID_TOWN_CLOCK_FILE`` to central
and the boxes, ``central.townclock``), every line also has ``town_time``: the town's time of
the record (UTC, ISO 8601, as ``time``), so a log read beside the dashboard lines up with it.
Without the setting, or before the demo has written its clock, there is no such field.

``parkgrid.cli`` calls ``configure`` before running a command that set
``structured_log=True`` on its parser; uvicorn is then started with ``log_config=None``
so it adds no handlers of its own and its loggers (``uvicorn.error``, ``uvicorn.access``)
reach the same handler.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from central.townclock import TownClock

FIELDS = "{levelname}{name}{message}"
RENAME = {"levelname": "level", "name": "logger"}
# uvicorn adds its message again with terminal colours: not a field worth keeping.
LEFT_OUT = [*RESERVED_ATTRS, "color_message"]
TOWN_CLOCK_ENV = "PARKGRID_TOWN_CLOCK_FILE"  # central's town_clock_file setting
QUIET_LIBRARY_LOGGERS = ("alembic.runtime.plugins",)


class TownTime(logging.Filter):
    """Adds ``town_time`` to each record while ``clock`` holds a simulated town's clock."""

    def __init__(self, clock: TownClock) -> None:
        super().__init__()
        self.clock = clock

    def filter(self, record: logging.LogRecord) -> bool:
        if self.clock.simulated:
            town = dt.datetime.fromtimestamp(self.clock.town(record.created), dt.UTC)
            record.town_time = town.isoformat(timespec="milliseconds")
        return True


def formatter() -> logging.Formatter:
    return JsonFormatter(
        FIELDS, style="{", timestamp="time", rename_fields=RENAME, reserved_attrs=LEFT_OUT
    )


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one JSON-lines handler at ``level``; with the
    town's clock in the environment (the demo), its lines carry ``town_time``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter())
    town_clock = os.environ.get(TOWN_CLOCK_ENV)
    if town_clock:
        handler.addFilter(TownTime(TownClock(Path(town_clock))))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries' own set-up chatter, not the service's story: alembic logs a line per
    # plugin at INFO each time a process starts (seven before central said anything).
    for name in QUIET_LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
