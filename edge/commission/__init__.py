"""The technician's commissioning commands: ``parkgrid edge listen|scan-signs|sign-test|...``.

One module per command, each with ``add_arguments(parser)`` and ``run(args) -> int``:

    listen      every sensor heard on a serial line, live (rich table) or as JSON lines
    scan-signs  which Modbus unit ids answer on a bus, their profile and firmware
    sign-test   test patterns on one sign, each confirmed by reading the registers back
    learn-bays  walk the lot in order; the first new sensor heard fills the bay's row in bays.csv
    walk-test   trigger bays one by one; catch sensors mapped to the wrong bay, or not at all
    doctor      the checklist before leaving site: pass or fail, each with its fix

Exit codes as everywhere in ``parkgrid edge``: 0 all well, 1 a check failed, 2 bad input.
The helpers they share (hearing serial lines for a bounded time, probing a sign, parsing
unit ranges) are in :mod:`edge.commission.common`.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Protocol, cast

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "listen": ("edge.commission.listen", "show every sensor heard on a serial line, live"),
    "scan-signs": ("edge.commission.scan_signs", "find the Modbus signs that answer on a bus"),
    "sign-test": ("edge.commission.sign_test", "run test patterns on one sign, read back"),
    "learn-bays": (
        "edge.commission.learn_bays",
        "walk the lot; the first new sensor heard is the bay's (fills bays.csv)",
    ),
    "walk-test": ("edge.commission.walk_test", "trigger bays one by one; check the mapping"),
    "doctor": ("edge.commission.doctor", "the checklist before leaving site"),
}


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def add_commands(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every commissioning command to ``parkgrid edge``'s subparsers."""
    for name, (module_name, help_text) in COMMANDS.items():
        module = cast(_CommandModule, importlib.import_module(module_name))
        parser = subs.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(parser)
        handler: Callable[[argparse.Namespace], int] = module.run
        parser.set_defaults(handler=handler)
