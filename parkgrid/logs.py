"""The log set-up of the long-running commands (``central serve``, ``edge run``): set once.

One JSON object per line on standard error (python-json-logger's formatter on the standard
``logging`` module): ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, any
``extra={...}`` fields of the call, and ``exc_info`` with the whole traceback as one string.
JSON rather than key=value because a message or a traceback keeps its newlines inside one
line (a log shipper never splits a record, an attacker cannot forge a line with a newline in
a user name) and journald, Loki or ``jq`` read it with no parsing rules of ours.

``parkgrid.cli`` calls ``configure`` before running a command that set
``structured_log=True`` on its parser; uvicorn is then started with ``log_config=None``
so it adds no handlers of its own and its loggers (``uvicorn.error``, ``uvicorn.access``)
reach the same handler.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FIELDS = "{levelname}{name}{message}"
RENAME = {"levelname": "level", "name": "logger"}
# uvicorn adds its message again with terminal colours: not a field worth keeping.
LEFT_OUT = [*RESERVED_ATTRS, "color_message"]


def formatter() -> logging.Formatter:
    return JsonFormatter(
        FIELDS, style="{", timestamp="time", rename_fields=RENAME, reserved_attrs=LEFT_OUT
    )


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one JSON-lines handler at ``level``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
