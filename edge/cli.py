"""``parkgrid edge ...``: run a box, and the technician's commands around it.

Every command prints what is wrong in plain words and exits non-zero: 2 for a bad config
or bad input, 1 for a check that failed. Never a traceback for something a person typed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.config import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _print_config_error(exc: ConfigError) -> int:
    print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_check_config(args: argparse.Namespace) -> int:
    from edge.config import load_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        return _print_config_error(exc)
    bays = sum(lot.capacity for lot in config.lots.values())
    signs = sum(len(bus.signs) for bus in config.sign_buses.values())
    print(
        f"{args.file}: ok: box {config.box_id} of site {config.site}, {len(config.lots)} lot(s), "
        f"{bays} bay(s), {len(config.serial)} serial line(s), {signs} sign(s)"
    )
    return EXIT_OK


def cmd_import_bays(args: argparse.Namespace) -> int:
    from edge.bays_csv import bays_to_toml, read_bays_csv

    try:
        lots = read_bays_csv(Path(args.csv))
    except ConfigError as exc:
        return _print_config_error(exc)
    if args.lot:
        lots = {args.lot: lots.get(args.lot, {})}
    text = bays_to_toml(lots)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        count = sum(len(b) for b in lots.values())
        print(f"wrote {count} bay(s) of {len(lots)} lot(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_export_bays(args: argparse.Namespace) -> int:
    from edge.bays_csv import bays_to_csv
    from edge.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _print_config_error(exc)
    text = bays_to_csv(config)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from edge.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _print_config_error(exc)
    from edge.runtime import run_box

    exit_code: int = run_box(config, config_path=Path(args.config), log_level=args.log_level)
    return exit_code


def configure(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="edge_command", metavar="COMMAND")

    run = subs.add_parser("run", help="run the box (the service systemd starts)")
    run.add_argument("--config", required=True, help="the box's edge.toml")
    run.add_argument("--log-level", default="INFO")
    run.set_defaults(handler=cmd_run, structured_log=True)

    check = subs.add_parser("check-config", help="validate a box config; list every problem")
    check.add_argument("file")
    check.set_defaults(handler=cmd_check_config)

    imp = subs.add_parser("import-bays", help="turn a bays CSV into [lots.*.bays] TOML")
    imp.add_argument("csv", help="columns: lot,bay,sensor,format[,heartbeat_timeout_s,label]")
    imp.add_argument("--lot", help="only this lot")
    imp.add_argument("--out", help="write here instead of standard output")
    imp.set_defaults(handler=cmd_import_bays)

    exp = subs.add_parser("export-bays", help="write a box config's bays as CSV")
    exp.add_argument("--config", required=True)
    exp.add_argument("--out")
    exp.set_defaults(handler=cmd_export_bays)

    # The technician's commissioning commands (listen, scan-signs, sign-test, walk-test, doctor).
    from edge.commission import add_commands

    add_commands(subs)
