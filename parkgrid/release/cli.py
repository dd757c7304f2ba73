"""``parkgrid release build|sign|keygen``: the office's side of a release (docs/fleet.md).

Exit codes as everywhere: 0 done, 1 a step failed (pip, the network), 2 bad input (a file
that is not a bundle, a key that exists). A refusal names what failed; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def cmd_build(args: argparse.Namespace) -> int:
    from parkgrid.release.build import BuildFailed, BuildRequest, build_bundle, describe

    source = Path(args.source) if args.source else Path(__file__).resolve().parents[2]
    request = BuildRequest(
        source=source,
        out=Path(args.out),
        version=args.release_version,
        rollback=args.rollback,
        min_version=args.min_version,
        python=args.python_version,
        machine=args.machine,
        platforms=tuple(args.platform or ()),
        wheels_from=Path(args.wheels_from) if args.wheels_from else None,
    )
    try:
        manifest = build_bundle(request, say=lambda line: print(line, file=sys.stderr))
    except BuildFailed as exc:
        print(f"release build: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if exc.step in ("source", "platform") else EXIT_FAILED
    print(f"{args.out}: {describe(manifest)}; unsigned: next `parkgrid release sign`")
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    from firmware_protocols.release_manifest import ReleaseRefused
    from parkgrid.release.keys import sign_bundle

    try:
        fingerprint = sign_bundle(Path(args.bundle), Path(args.key))
    except ReleaseRefused as exc:
        print(f"release sign: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, ValueError) as exc:
        print(f"release sign: {args.key}: cannot use it as the private key ({exc})",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    print(f"{args.bundle}: signed with key {fingerprint}")
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace) -> int:
    from parkgrid.release.keys import keygen

    try:
        public, fingerprint = keygen(Path(args.out))
    except FileExistsError:
        print(f"release keygen: {args.out} exists: a key is never overwritten", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"release keygen: {args.out}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"private key {args.out} (0600: keep it off central and off the boxes)")
    print(f"public key {public} (fingerprint {fingerprint}): every box's /etc/parkgrid/")
    return EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="release_command", metavar="COMMAND")

    build = subs.add_parser("build", help="a bundle: parkgrid's wheel and the runtime lock's")
    build.add_argument("--out", required=True, help="the bundle file to write (a tar)")
    build.add_argument("--source", help="the parkgrid checkout (default: this one)")
    build.add_argument(
        "--version",
        dest="release_version",
        help="the release's version (default: pyproject.toml's)",
    )
    build.add_argument(
        "--rollback",
        action="store_true",
        help="a rollback release: boxes may install it over a newer version",
    )
    build.add_argument("--min-version", help="boxes must run at least this version first")
    build.add_argument("--python-version", help="the box's Python, e.g. 3.11 (default: this)")
    build.add_argument("--machine", help="the box's CPU, e.g. aarch64 (default: this machine's)")
    build.add_argument(
        "--platform",
        action="append",
        help="a pip platform tag of the box (repeat), e.g. manylinux_2_36_aarch64",
    )
    build.add_argument(
        "--wheels-from",
        metavar="DIR",
        help="take the locked wheels from this folder (e.g. a previous bundle's) "
        "instead of the package index; their hashes are still checked",
    )
    build.set_defaults(handler=cmd_build)

    sign = subs.add_parser("sign", help="sign a bundle's manifest with the release key")
    sign.add_argument("bundle")
    sign.add_argument("--key", required=True, help="the private key from `release keygen`")
    sign.set_defaults(handler=cmd_sign)

    keygen = subs.add_parser("keygen", help="make the Ed25519 release key pair")
    keygen.add_argument(
        "--out", required=True, help="the private key's file (0600); the public key goes to OUT.pub"
    )
    keygen.set_defaults(handler=cmd_keygen)
