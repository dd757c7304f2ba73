"""``parkgrid central fleet status`` and ``parkgrid central fleet config push``.

Both read the site file and the store as ``central serve`` does (``PARKGRID_SITE_FILE``,
``PARKGRID_DATABASE_URL``, or ``--site``, ``--database-url``); ``push`` publishes to the
broker with central's credentials (``PARKGRID_MQTT_URL``, ``PARKGRID_MQTT_USERNAME``,
``PARKGRID_MQTT_PASSWORD``), one connection for the whole push. Whoever may run it on
central's host holds central's credentials: it is an admin's command, audited as
``cli:<user>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import ssl
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
PUBLISH_WAIT_S = 15.0


def configure(
    parser: argparse.ArgumentParser, db: Callable[[argparse.ArgumentParser], None]
) -> None:
    commands = parser.add_subparsers(dest="fleet_command", metavar="COMMAND")
    status = commands.add_parser(
        "status", help="each box: desired and reported configuration, state, what differs"
    )
    _common(status, db)
    status.add_argument("--json", action="store_true", help="one JSON document")
    status.set_defaults(handler=_status)

    config = commands.add_parser("config", help="the boxes' configuration")
    config_commands = config.add_subparsers(dest="config_command", metavar="COMMAND")
    push = config_commands.add_parser(
        "push", help="push boxes the configuration the site file gives them (admin; audited)"
    )
    _common(push, db)
    which = push.add_mutually_exclusive_group(required=True)
    which.add_argument("--box", help="one box")
    which.add_argument("--town", action="store_true", help="every box of the site file's town")
    which.add_argument("--all", action="store_true", help="every box of the site file")
    push.set_defaults(handler=_push)
    config.set_defaults(handler=lambda _args: _usage(config))
    from central.fleet.rollout_cli import configure as configure_rollouts

    configure_rollouts(commands, lambda sub: _common(sub, db))
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _common(parser: argparse.ArgumentParser, db: Callable[[argparse.ArgumentParser], None]) -> None:
    db(parser)
    parser.add_argument("--site", type=Path, help="site TOML file (env PARKGRID_SITE_FILE)")
    parser.add_argument(
        "--box-mqtt-url", help="the broker as boxes reach it (env PARKGRID_BOX_MQTT_URL)"
    )


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(settings, site, engine), or None after printing what is wrong."""
    from pydantic import ValidationError

    from central.db.engine import make_engine
    from central.db.migrate import upgrade
    from central.settings import CentralSettings, setting_problem
    from site_model.site import SiteError, load_site

    overrides: dict[str, object] = {"database_url": args.database_url}
    if args.site is not None:
        # One town's file, also on a county's host (whose environment names the county).
        overrides |= {"site_file": args.site, "county_file": None}
    if args.box_mqtt_url is not None:
        overrides["box_mqtt_url"] = args.box_mqtt_url
    try:
        settings = CentralSettings(**overrides)  # type: ignore[arg-type]
        if settings.site_file is None:
            print(
                "fleet: works on one town's site file: give --site FILE, one of the towns' "
                f"site files {settings.county_file} names",
                file=sys.stderr,
            )
            return None
        site = load_site(settings.site_file)
    except ValidationError as exc:
        for err in exc.errors():
            print(f"fleet: {setting_problem(err)}", file=sys.stderr)
        return None
    except SiteError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return None
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return settings, site, engine


def _status(args: argparse.Namespace) -> int:
    from central.fleet.service import fleet_status

    loaded = _load(args)
    if loaded is None:
        return EXIT_USAGE
    settings, site, engine = loaded
    rows = fleet_status(engine, site, mqtt_url=settings.box_url)
    if args.json:
        print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
        return EXIT_OK
    short = lambda h: "-" if h is None else h.removeprefix("sha256:")[:12]  # noqa: E731
    table = [("BOX", "DESIRED", "REPORTED", "STATE", "RELEASE", "DIFFERS / REASON")]
    for row in rows:
        version = f" v{row.desired_version}" if row.desired_version else ""
        what = ", ".join(row.differs)
        if row.reason:
            what = f"{row.reason}" + (f" ({what})" if what else "")
        table.append(
            (row.box_id, short(row.desired_hash) + version, short(row.reported_hash), row.state,
             _release(row), what or "-")
        )  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
              + "  " + line[5])  # fmt: skip
    return EXIT_OK


def _release(row) -> str:  # type: ignore[no-untyped-def]
    """'1.1.0 confirmed', '1.0.0 rolled_back from 1.1.0 (why)', or '-' (not reported)."""
    if row.release_state is None:
        return "-"
    text = f"{row.release_version or '?'} {row.release_state}"
    if row.release_failed_version:
        text += f" from {row.release_failed_version}"
    if row.release_reason:
        text += f" ({row.release_reason})"
    return text


def _push(args: argparse.Namespace) -> int:
    from central.errors import CentralError
    from central.fleet.service import push

    loaded = _load(args)
    if loaded is None:
        return EXIT_USAGE
    settings, site, engine = loaded
    boxes = [args.box] if args.box else sorted(site.boxes)
    if args.box and args.box not in site.boxes:
        known = ", ".join(sorted(site.boxes)) or "none"
        print(f"fleet: no box {args.box!r} in {settings.site_file} (its boxes: {known}); "
              "nothing sent", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    try:
        with _publisher(settings) as publish:
            pushed = push(
                engine,
                site,
                box_ids=boxes,
                mqtt_url=settings.box_url,
                actor=f"cli:{getpass.getuser()}",
                publish=publish,
            )
    except CentralError as exc:
        print(f"fleet: {exc.detail}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"fleet: the broker at {settings.mqtt_url}: {exc}; nothing sent", file=sys.stderr)
        return EXIT_FAIL
    failed = 0
    for out in pushed:
        word = "sent" if out.sent else "NOT SENT (the broker did not take it)"
        failed += not out.sent
        print(f"{out.box_id}: version {out.version} {out.hash.removeprefix('sha256:')[:12]} {word}")
    print("then: parkgrid central fleet status", file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK


@contextmanager
def _publisher(settings) -> Iterator[Callable[[str, bytes, float | None], bool]]:  # type: ignore[no-untyped-def]
    """A publish function on one connection with central's credentials, QoS 1, waited for."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"parkgrid-fleet-{uuid.uuid4().hex[:8]}"
    )
    if settings.mqtt_username:
        secret = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, secret)
    if settings.mqtt_url.startswith("mqtts://"):
        client.tls_set_context(ssl.create_default_context())
    host, port = settings.mqtt_host_port()
    client.connect(host, port)
    client.loop_start()

    def publish(topic: str, payload: bytes, expiry_s: float | None) -> bool:
        info = client.publish(topic, payload, qos=1, retain=False)
        try:
            info.wait_for_publish(PUBLISH_WAIT_S)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    try:
        yield publish
    finally:
        client.disconnect()
        client.loop_stop()
