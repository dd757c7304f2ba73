"""``parkgrid central release add FILE`` and ``parkgrid central release list``.

``add`` checks the bundle under the release public key (``--key``, env
``PARKGRID_RELEASE_PUBLIC_KEY``: central never holds the private key), stores it in the
releases folder (``--releases-dir``, env ``PARKGRID_RELEASES_DIR``, the folder ``central
serve`` serves from) and records ``release.add`` in the audit trail as ``cli:<user>``: it is
an admin's command on central's host. Exit codes: 0 stored, 2 refused (nothing stored).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def configure(
    parser: argparse.ArgumentParser, db: Callable[[argparse.ArgumentParser], None]
) -> None:
    commands = parser.add_subparsers(dest="release_command", metavar="COMMAND")
    add = commands.add_parser("add", help="check a signed bundle and store it (admin; audited)")
    db(add)
    add.add_argument("bundle", type=Path, help="the signed bundle (parkgrid release sign)")
    _where(add)
    add.add_argument(
        "--key",
        type=Path,
        default=os.environ.get("PARKGRID_RELEASE_PUBLIC_KEY"),
        help="the release public key (env PARKGRID_RELEASE_PUBLIC_KEY)",
    )
    add.set_defaults(handler=_add)
    listing = commands.add_parser("list", help="the stored releases")
    _where(listing)
    listing.set_defaults(handler=_list)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--releases-dir",
        type=Path,
        default=os.environ.get("PARKGRID_RELEASES_DIR"),
        help="where central keeps bundles (env PARKGRID_RELEASES_DIR; default: releases/ "
        "beside a SQLite database)",
    )


def _releases_dir(args: argparse.Namespace) -> Path:
    if args.releases_dir is not None:
        return Path(args.releases_dir)
    from central.settings import default_pictures_dir

    url = getattr(args, "database_url", None) or os.environ.get(
        "PARKGRID_DATABASE_URL", "sqlite:///parkgrid-central.db"
    )
    return default_pictures_dir(url).parent / "releases"


def _add(args: argparse.Namespace) -> int:
    from central import audit
    from central.db.engine import make_engine, writer
    from central.db.migrate import upgrade
    from central.releases import store
    from firmware_protocols.release_manifest import ReleaseRefused

    if args.key is None:
        print("release add: no --key (the release public key); nothing stored", file=sys.stderr)
        return EXIT_USAGE
    try:
        public_key = Path(args.key).read_bytes()
    except OSError as exc:
        print(f"release add: --key {args.key}: {exc.strerror}; nothing stored", file=sys.stderr)
        return EXIT_USAGE
    folder = _releases_dir(args)
    engine = make_engine(args.database_url)  # the audit trail reachable before anything is stored
    upgrade(engine)
    try:
        release = store.add(folder, args.bundle, public_key)
    except ReleaseRefused as exc:
        print(f"release add: refused: {exc}; nothing stored", file=sys.stderr)
        return EXIT_USAGE
    with writer(engine).begin() as conn:
        audit.record(
            conn,
            actor=f"cli:{getpass.getuser()}",
            action="release.add",
            target=release.version,
            detail={"sha256": release.sha256, "size": release.size, "key": release.key},
        )
    print(
        f"release {release.version} stored in {folder / release.version} "
        f"(sha256 {release.sha256[:16]}..., {release.size} bytes, key {release.key})"
    )
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from central.releases import store

    for release in store.stored(_releases_dir(args)):
        kind = " rollback" if release.rollback else ""
        print(f"{release.version}{kind}  sha256 {release.sha256[:16]}...  {release.size} bytes")
    return EXIT_OK
