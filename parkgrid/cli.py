"""The ``parkgrid`` command: one entry point, one subcommand group per package.

Each group lives with the package it drives (``edge.cli``, ``central.cli``,
``simulators.cli``, ``parkgrid.demo``) and exposes ``configure(parser)``, which adds its
subcommands and sets ``handler`` on the parsed namespace. A group whose module does not
exist yet is listed, and says so and exits 2 when called: it never pretends to work.
Imports are lazy so that ``parkgrid edge ...`` on a small box never loads FastAPI.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

EXIT_FAIL, EXIT_USAGE = 1, 2

# group name -> (module that configures it, one-line help)
GROUPS: dict[str, tuple[str, str]] = {
    "edge": ("edge.cli", "run and commission an edge box"),
    "central": ("central.cli", "run and administer the central aggregator"),
    "sim": ("simulators.cli", "device and town simulators"),
    "demo": ("parkgrid.demo", "run the whole town on this machine"),
    "camera": (
        "parkgrid.camera_listen",
        "commission a camera (listen), relay a Dahua attach stream to central (attach)",
    ),
    "schema": ("parkgrid.schema", "write the JSON Schema of the uplink payloads"),
    "release": ("parkgrid.release.cli", "build, sign and key the bundles boxes install"),
}


def configure_from_module(name: str, module_name: str, parser: argparse.ArgumentParser) -> None:
    """Let ``module_name.configure(parser)`` fill the subcommand, or mark it as not built."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        parser.set_defaults(handler=_not_built(name))
        return
    module.configure(parser)


def _not_built(name: str) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        print(f"parkgrid {name}: not built yet in this version.", file=sys.stderr)
        return EXIT_USAGE

    return handler


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parkgrid", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    groups = parser.add_subparsers(dest="group", metavar="{" + ",".join(GROUPS) + "}")
    # Only the group being run is imported; the others are listed by name for --help.
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in GROUPS.items():
        sub = groups.add_parser(name, help=help_text)
        if name == wanted:
            configure_from_module(name, GROUPS[name][0], sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if args.version:
        from parkgrid import __version__

        print(__version__)
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "structured_log", False):
        # The long-running services log JSON lines, set up here once (parkgrid/logs.py).
        from parkgrid.logs import configure

        configure(getattr(args, "log_level", "INFO"))
    try:
        result: int = handler(args)
    except RuntimeError as exc:
        from central.db.engine import DatabaseDriverMissing

        if not isinstance(exc, DatabaseDriverMissing):
            raise
        print(f"parkgrid: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return result
