"""``parkgrid sim ...``: one subcommand per simulator, each configured by its own module."""

from __future__ import annotations

import argparse
import importlib

# subcommand -> (module with configure(parser), help)
SIMULATORS: dict[str, tuple[str, str]] = {
    "concentrator": ("simulators.concentrator", "a sensor concentrator on a pty"),
    "m77": ("simulators.m77", "a 433 MHz M77 receiver answering polls on a pty"),
    "signs": ("simulators.signs", "guidance and warning signs as a Modbus server"),
    "cameras": ("simulators.cameras", "capture cameras posting to central"),
    "town": ("simulators.town", "a day of Xigang town"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="simulator", metavar="{" + ",".join(SIMULATORS) + "}")
    for name, (module_name, help_text) in SIMULATORS.items():
        # Each simulator fills its own subcommand; the simulators import nothing from the
        # command layer above them (the floors contract in pyproject.toml).
        importlib.import_module(module_name).configure(subs.add_parser(name, help=help_text))
