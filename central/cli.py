"""``parkgrid central``: serve, migrate, add-user, add-token, verify-ledger,
rebuild-history, check-site, provision-box, fleet, release.

Exit codes: 0 done, 1 failed at run time, 2 bad input (site file, arguments).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
SHUTDOWN_GRACE_S = 5  # seconds a request may finish after SIGTERM; then open streams are cut


TOWN_HELP = "the county town it acts in (its site id); default: every town (county-wide)"


def _town(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a town id")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="central_command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the aggregator (API + MQTT ingest)")
    _db(serve)
    serve.add_argument("--site", type=Path, help="site TOML file (env PARKGRID_SITE_FILE)")
    serve.add_argument(
        "--county",
        type=Path,
        help="county TOML file naming many towns' site files, served by this one central "
        "(env PARKGRID_COUNTY_FILE; instead of --site; docs/scale.md, 'A county')",
    )
    serve.add_argument("--mqtt-url", help="mqtt://host:port (env PARKGRID_MQTT_URL)")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP listen address")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port")
    serve.add_argument(
        "--ingest-group", help="share the MQTT ingest with other processes ($share/NAME/...)"
    )
    serve.add_argument("--no-ingest", action="store_true", help="API only, no MQTT ingest")
    serve.add_argument("--instance", help="this instance's name (default: host name)")
    serve.add_argument("--no-migrate", action="store_true", help="do not migrate at start")
    serve.add_argument(
        "--camera-clock-skew-minutes",
        type=float,
        help="hold captures further than this from their receipt (default 10; env "
        "PARKGRID_CAMERA_CLOCK_SKEW_MINUTES; a camera's site-file setting wins)",
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve, structured_log=True)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    _db(migrate)
    migrate.set_defaults(handler=_migrate)

    add_user = commands.add_parser("add-user", help="add a user (or --replace one)")
    _db(add_user)
    add_user.add_argument("username")
    add_user.add_argument("--role", choices=["viewer", "operator", "admin"], default="viewer")
    add_user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    add_user.add_argument("--replace", action="store_true", help="update an existing user")
    add_user.add_argument("--town", type=_town, help=TOWN_HELP)
    _deployment_files(add_user)
    add_user.set_defaults(handler=_add_user)

    list_users = commands.add_parser("list-users", help="the users: role, town, disabled")
    _db(list_users)
    list_users.set_defaults(handler=_list_users)

    add_token = commands.add_parser("add-token", help="issue a machine token (camera, box)")
    _db(add_token)
    add_token.add_argument("name")
    add_token.add_argument("--role", choices=["camera", "box"], required=True)
    add_token.add_argument("--days", type=int, default=365)
    add_token.add_argument("--town", type=_town, help=TOWN_HELP)
    _deployment_files(add_token)
    add_token.set_defaults(handler=_add_token)

    verify = commands.add_parser(
        "verify-ledger", help="recompute the ledger's hash chain; name the first bad entry"
    )
    _db(verify)
    verify.set_defaults(handler=_verify_ledger)

    rebuild = commands.add_parser(
        "rebuild-history", help="recompute the history rollups from raw events (a repair)"
    )
    _db(rebuild)
    rebuild.add_argument("--lot", action="append", help="this lot only (repeatable)")
    rebuild.add_argument("--since", help="ISO 8601 time (whole hours); default: all")
    rebuild.add_argument("--until", help="ISO 8601 time (whole hours); default: all")
    rebuild.set_defaults(handler=_rebuild_history)

    check = commands.add_parser("check-site", help="validate a site file or a county file")
    check.add_argument("site", type=Path, help="a site file, or a county file naming towns")
    check.set_defaults(handler=_check_site)

    from central import provision

    prov = commands.add_parser(
        "provision-box", help="a box's MQTT password, ACL entries and starter edge.toml"
    )
    provision.add_arguments(prov)
    prov.set_defaults(handler=provision.run)

    from central.fleet.cli import configure as configure_fleet

    fleet = commands.add_parser(
        "fleet", help="the boxes' configuration: status, config push (docs/fleet.md)"
    )
    configure_fleet(fleet, _db)

    from central.releases.cli import configure as configure_releases

    release = commands.add_parser(
        "release", help="release bundles served to the boxes: add, list (docs/fleet.md)"
    )
    configure_releases(release, _db)

    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PARKGRID_DATABASE_URL", "sqlite:///parkgrid-central.db"),
        help="sqlite:///path.db or postgresql+psycopg://user@host/db (env PARKGRID_DATABASE_URL)",
    )


def _engine(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from central.db.engine import make_engine
    from central.db.migrate import upgrade

    engine = make_engine(args.database_url)
    upgrade(engine)
    return engine


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from central.app import create_app
    from central.db.engine import require_driver
    from central.settings import CentralSettings, setting_problem
    from site_model.county import CountyError, load_deployment
    from site_model.site import SiteError

    overrides: dict[str, object] = {"database_url": args.database_url}
    for name, value in (
        ("site_file", args.site),
        ("county_file", args.county),
        ("mqtt_url", args.mqtt_url),
        ("ingest_group", args.ingest_group),
        ("instance", args.instance),
        ("camera_clock_skew_minutes", args.camera_clock_skew_minutes),
    ):
        if value is not None:
            overrides[name] = value
    if args.no_ingest:
        overrides["ingest"] = False
    if args.no_migrate:
        overrides["migrate_on_start"] = False
    try:
        settings = CentralSettings(**overrides)  # type: ignore[arg-type]
        load_deployment(site_file=settings.site_file, county_file=settings.county_file)
        # Here, not in the app's start-up, where uvicorn would print a traceback for it.
        require_driver(settings.database_url)
    except ValidationError as exc:
        for err in exc.errors():
            print(f"central: {setting_problem(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (SiteError, CountyError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    # The ledger head leaves the database through this line (docs/ledger.md): logged
    # whatever --log-level says.
    logging.getLogger("central.ledger.chain").setLevel(logging.INFO)
    guard = http_guard(settings)
    # log_config=None: uvicorn keeps the JSON handler parkgrid.cli set up (parkgrid/logs.py).
    uvicorn.run(
        create_app(settings, http_guard=guard),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,
        # Live streams never end by themselves: without a bound uvicorn's graceful shutdown
        # waited for every open dashboard, so SIGTERM did nothing until SIGKILL (no clean
        # ingest shutdown). Requests get this long to finish, then streams are cut.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        **guard.uvicorn_options(),
    )
    return EXIT_OK


def http_guard(settings):  # type: ignore[no-untyped-def]
    """The HTTP limits of the settings, with the file-descriptor limit raised to hold them."""
    import resource

    from central.http_limits import HttpGuard, HttpLimits

    wanted = settings.http_max_connections + 256  # the database, the MQTT link, threads
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    max_connections = settings.http_max_connections
    if soft != resource.RLIM_INFINITY and soft < wanted:
        max_connections = max(10, soft - 256)
        logging.getLogger(__name__).warning(
            "open files limited to %d: at most %d HTTP connections (raise LimitNOFILE)",
            soft,
            max_connections,
        )
    return HttpGuard(
        HttpLimits(
            max_connections=max_connections,
            per_address=settings.http_max_connections_per_address,
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            keep_alive_s=settings.http_keep_alive_s,
            max_header_bytes=settings.http_max_header_bytes,
        )
    )


def _deployment_files(parser: argparse.ArgumentParser) -> None:
    """--site / --county, as ``serve`` reads them, to check a --town against."""
    parser.add_argument(
        "--site", type=Path, default=_env_path("PARKGRID_SITE_FILE"),
        help="the site file (env PARKGRID_SITE_FILE): --town must be its town",
    )  # fmt: skip
    parser.add_argument(
        "--county", type=Path, default=_env_path("PARKGRID_COUNTY_FILE"),
        help="the county file (env PARKGRID_COUNTY_FILE): --town must be one of its towns",
    )  # fmt: skip


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _town_problem(args: argparse.Namespace) -> str | None:
    """Why ``--town`` names no town this deployment serves, or None (no --town, or one of
    its towns). A typo made an account that could act nowhere."""
    from site_model.county import CountyError, load_county
    from site_model.site import SiteError, load_site

    if args.town is None:
        return None
    try:
        if args.county is not None:
            towns = sorted(load_county(args.county).towns)
            if args.town not in towns:
                return f"no town {args.town!r} in {args.county} (its towns: {', '.join(towns)})"
            return None
        if args.site is not None:
            site_id = load_site(args.site).id
            if args.town != site_id:
                return f"no town {args.town!r}: {args.site} is town {site_id!r}"
            return None
    except (SiteError, CountyError) as exc:
        return str(exc)
    return (
        "--town is checked against the county file: give --county FILE or set "
        "PARKGRID_COUNTY_FILE (or --site FILE for a single town)"
    )


def _migrate(args: argparse.Namespace) -> int:
    from central.db.engine import make_engine
    from central.db.migrate import current, upgrade

    engine = make_engine(args.database_url)
    upgrade(engine)
    print(f"database at revision {current(engine)}")
    return EXIT_OK


def _add_user(args: argparse.Namespace) -> int:
    from central.auth.models import Role
    from central.auth.service import add_user
    from central.errors import CentralError

    if problem := _town_problem(args):
        print(f"central: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("central: the passwords differ", file=sys.stderr)
            return EXIT_USAGE
    try:
        add_user(
            _engine(args),
            username=args.username,
            password=password,
            role=Role(args.role),
            actor=f"cli:{getpass.getuser()}",
            replace=args.replace,
            town=args.town,
        )
    except CentralError as exc:
        print(f"central: {exc.detail}", file=sys.stderr)
        return EXIT_USAGE
    where = f"town {args.town}" if args.town else "county-wide"
    print(f"user {args.username} ({args.role}, {where}) saved")
    return EXIT_OK


def _list_users(args: argparse.Namespace) -> int:
    from central.auth.service import list_users

    for user in list_users(_engine(args)):
        town = user["town"] or "(county-wide)"
        state = "disabled" if user["disabled"] else "enabled"
        print(f"{user['username']}\t{user['role']}\t{town}\t{state}")
    return EXIT_OK


def _add_token(args: argparse.Namespace) -> int:
    from central.auth.models import Role
    from central.auth.service import issue_token

    if problem := _town_problem(args):
        print(f"central: {problem}", file=sys.stderr)
        return EXIT_USAGE
    token, _ = issue_token(
        _engine(args),
        name=args.name,
        role=Role(args.role),
        ttl_s=args.days * 86400,
        actor=f"cli:{getpass.getuser()}",
        town=args.town,
    )
    print(token)
    return EXIT_OK


def _verify_ledger(args: argparse.Namespace) -> int:
    from central.db.engine import make_engine
    from central.ledger.chain import verify

    engine = make_engine(args.database_url)
    try:
        result = verify(engine)
    except Exception as exc:  # an unreachable or unmigrated database
        print(f"cannot read the ledger: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        engine.dispose()
    if result.ok:
        # The head to publish (docs/ledger.md): a later run must still reach it.
        print(f"ledger ok: {result.entries} entries, head {result.head}")
        return EXIT_OK
    print(
        f"ledger broken at entry {result.bad_seq}: {result.reason} "
        f"({result.entries} entries before it verify)",
        file=sys.stderr,
    )
    recorded = "none" if result.recorded is None else str(result.recorded)
    print(f"chain head: {result.head}; recorded head: {recorded}", file=sys.stderr)
    return EXIT_FAIL


def _rebuild_history(args: argparse.Namespace) -> int:
    import datetime as dt

    from central.db.engine import writer
    from central.errors import Invalid
    from central.history.rollups import count_rows, rebuild

    def when(value: str | None) -> float | None:  # no zone given: UTC
        if value is None:
            return None
        at = dt.datetime.fromisoformat(value)
        return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()

    try:
        since, until = when(args.since), when(args.until)
    except ValueError as exc:
        print(f"--since/--until: {exc}", file=sys.stderr)
        return EXIT_USAGE
    engine = _engine(args)
    try:
        with writer(engine).begin() as conn:
            walked = rebuild(conn, lot_ids=args.lot, start=since, end=until)
            rows = count_rows(conn)
    except Invalid as exc:
        print(f"cannot rebuild: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        engine.dispose()
    print(f"rebuilt from {walked} bay changes; rollup rows now {rows}")
    return EXIT_OK


def _check_site(args: argparse.Namespace) -> int:
    """A site file, or a county file (a ``[county]`` table): every town's file and the ids
    across towns, as ``serve --county`` loads it."""
    from site_model.configfile import ConfigFileError, read_toml
    from site_model.county import CountyError, load_county
    from site_model.site import SiteError, load_site

    try:
        is_county = "county" in read_toml(args.site)
        if is_county:
            county = load_county(args.site)
            print(f"{args.site}: county {county.id}: {len(county.towns)} towns")
            for town_id, site in county.towns.items():
                print(f"  {town_id}: {_site_figures(site)}")
        else:
            site = load_site(args.site)
            print(f"{args.site}: site {site.id}: {_site_figures(site)}")
    except (ConfigFileError, SiteError, CountyError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _site_figures(site: Any) -> str:
    bays = sum(1 for _ in site.lot_bays()) + sum(1 for _ in site.zone_bays())
    return (
        f"{len(site.boxes)} boxes, {len(site.lots)} lots, {len(site.zones)} zones, "
        f"{bays} bays, {len(site.grids)} grids"
    )
