"""``parkgrid edge ...``: run a box, and the technician's commands around it.

Every command prints what is wrong in plain words and exits non-zero: 2 for a bad config
or bad input, 1 for a check that failed. Never a traceback for something a person typed.
``edge run`` exits 75 after central's ``install-release`` switched it to another slot, for its
supervisor to start it again (``edge.release_command``; docs/fleet.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.config import BayConfig, ConfigError, EdgeConfig

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
    from edge.config_apply import pushed_summary
    from site_model.configfile import load_file_data

    pushed = pushed_summary(load_file_data(args.file, error=ConfigError), config.data_dir)
    if pushed is not None:
        line, ok = pushed
        print(f"  {line}", file=sys.stdout if ok else sys.stderr)
        return EXIT_OK if ok else EXIT_BAD_INPUT
    return EXIT_OK


def cmd_import_bays(args: argparse.Namespace) -> int:
    from edge.bays_csv import bays_to_toml, read_bays_csv

    try:
        lots = read_bays_csv(Path(args.csv))
    except ConfigError as exc:
        return _print_config_error(exc)
    if args.lot:
        in_file = ", ".join(lots) or "none"
        lots = {args.lot: lots.get(args.lot, {})}
        if not lots[args.lot]:
            print(
                f"{args.csv}: no row of lot {args.lot} (its lots: {in_file}); nothing imported",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    if args.config:
        return _import_in_place(Path(args.config), lots)
    text = bays_to_toml(lots)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        count = sum(len(b) for b in lots.values())
        print(f"wrote {count} bay(s) of {len(lots)} lot(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _import_in_place(path: Path, lots: dict[str, dict[str, BayConfig]]) -> int:
    from edge.config_edit import replace_bays, write_in_place

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{path}: cannot read it: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        new_text, changes = replace_bays(text, lots, source=str(path))
        write_in_place(path, new_text)
    except ConfigError as exc:
        code = _print_config_error(exc)
        print(f"{path}: nothing written", file=sys.stderr)
        return code
    except PermissionError as exc:
        print(
            f"{path}: cannot write here ({exc.strerror}): run import-bays as the file's owner "
            f"(sudo for /etc/parkgrid); nothing written",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    for change in changes:
        print(change.line(), file=sys.stderr)
    print(f"{path}: updated in place (comments, mode and owner kept)", file=sys.stderr)
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


def cmd_inspect(args: argparse.Namespace) -> int:
    # Imported here: sqlite-utils is for this command only, never loaded by `edge run`.
    from edge.store_inspect import run

    return run(args)


def unreadable_mqtt_files(config: EdgeConfig) -> list[str]:
    """The files ``[mqtt]`` names that cannot be read now, each as ``key: path: reason``.

    The uplink reads them on every connection; one missing (the password not copied into
    /etc/parkgrid) would make it fail for ever with a traceback instead of saying which."""
    mqtt = config.mqtt
    named = {
        "password_file": mqtt.password_file,
        "ca_file": mqtt.ca_file if mqtt.tls else None,
        "cert_file": mqtt.cert_file if mqtt.tls else None,
        "key_file": mqtt.key_file if mqtt.tls else None,
    }
    problems = []
    for key, path in named.items():
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            problems.append(f"mqtt.{key}: {path}: {exc.strerror or exc}")
    return problems


def cmd_run(args: argparse.Namespace) -> int:
    from edge.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return _print_config_error(exc)
    if problems := unreadable_mqtt_files(config):
        print(f"{args.config}: cannot read what [mqtt] names:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(
            "  fix: put the files from provision-box there (0640 root:parkgrid), "
            "or correct the path in the config",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    user = config.mqtt.username
    if user is not None and user != config.box_id:
        # still run: the outbox keeps every event until the files are put right
        print(
            f"edge run: WARNING: box {config.box_id} logs in to the broker as {user}: a "
            f"town's broker (provision-box's ACL) lets {user} publish only under its own "
            f"box id and drops everything under parkgrid/v1/{config.site}/{config.box_id}/; "
            "install edge.toml and mqtt-password of the same box",
            file=sys.stderr,
            flush=True,
        )
    from edge.runtime import run_box

    exit_code: int = run_box(config_path=Path(args.config), log_level=args.log_level)
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

    imp = subs.add_parser(
        "import-bays", help="put a bays CSV into a box config (replacing those lots' bays)"
    )
    imp.add_argument("csv", help="columns: lot,bay,sensor,format[,heartbeat_timeout_s,label]")
    imp.add_argument("--lot", help="only this lot")
    where = imp.add_mutually_exclusive_group()
    where.add_argument(
        "--config",
        help="edit this edge.toml in place: each imported lot's bays table is replaced "
        "(comments, other settings, mode and owner kept; checked before it is written)",
    )
    where.add_argument("--out", help="write the [lots.*.bays] TOML here instead of stdout")
    imp.set_defaults(handler=cmd_import_bays)

    exp = subs.add_parser("export-bays", help="write a box config's bays as CSV")
    exp.add_argument("--config", required=True)
    exp.add_argument("--out")
    exp.set_defaults(handler=cmd_export_bays)

    inspect = subs.add_parser(
        "inspect", help="what the box holds on disk (outbox, zone store), read-only"
    )
    inspect.add_argument("--config", required=True, help="the box's edge.toml")
    inspect.add_argument("--events", type=int, default=0, help="also list the N newest events")
    inspect.add_argument("--json", action="store_true", help="one JSON document")
    inspect.set_defaults(handler=cmd_inspect)

    # The technician's commissioning commands (listen, scan-signs, sign-test, walk-test, doctor).
    from edge.commission import add_commands

    add_commands(subs)

    # A release's install, boot check and confirm (docs/fleet.md).
    from edge.update.cli import add_commands as add_update_commands

    add_update_commands(subs)
