"""``parkgrid edge update|boot-check|confirm|releases``: the box's side of a release.

``update`` is the technician's (a bundle from a USB stick) and the fleet's; ``boot-check``
and ``confirm`` are run by the unit around ``edge run``; ``releases`` shows the slots.
Exit codes: 0 done, 1 failed (a gate, a step), 2 refused (the bundle, bad input).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from edge.update.slots import SLOTS, Layout

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2
DEFAULT_PREFIX = "/opt/parkgrid"
DEFAULT_KEY = "/etc/parkgrid/release.pub"
DEFAULT_CONFIG = "/etc/parkgrid/edge.toml"
DEFAULT_TOKEN = "/etc/parkgrid/central-token"
DEFAULT_DATA = "/var/lib/parkgrid"


def _say(line: str) -> None:
    print(line, flush=True)


def _fetch(args: argparse.Namespace) -> Path:
    """The bundle downloaded from central (``--from-central``/``--from-url``), resumable."""
    import hashlib

    from edge.update.fetch import download
    from firmware_protocols.release_manifest import ReleaseRefused

    if args.from_central is not None:
        if not args.central_url:
            raise ReleaseRefused("--central-url", "needed with --from-central (or env "
                                 "PARKGRID_CENTRAL_URL)")  # fmt: skip
        url = f"{args.central_url.rstrip('/')}/api/v1/releases/{args.from_central}/bundle"
    else:
        url = args.from_url
    if not url.startswith(("http://", "https://")):
        raise ReleaseRefused(url, "not an http:// or https:// URL")
    try:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ReleaseRefused(args.token_file, f"the box's central token: {exc.strerror}") from None
    name = "bundle-" + hashlib.sha256(url.encode()).hexdigest()[:16]
    got = download(url, token, Path(args.data_dir) / "downloads", name, say=_say)
    _say(f"download: {got.path} sha256 {got.sha256[:16]}... (as central's ETag)")
    expected = args.sha256.removeprefix("sha256:") if args.sha256 else None
    if expected is not None and got.sha256 != expected:
        got.path.unlink(missing_ok=True)
        raise ReleaseRefused(
            "sha256",
            f"the downloaded bundle's sha256 is {got.sha256[:16]}..., the command says "
            f"{expected[:16]}...; the download was deleted, nothing changed",
        )
    return got.path


def _sha256_arg(value: str) -> str:
    hexdigest = value.removeprefix("sha256:")
    if len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise argparse.ArgumentTypeError(f"{value!r} is not a sha256 (64 lower-case hex)")
    return hexdigest


def cmd_update(args: argparse.Namespace) -> int:
    if args.request:
        return _run_request(args)
    code, said = _install(args)
    print(said, file=sys.stderr if code else sys.stdout, flush=True)
    return code


def _run_request(args: argparse.Namespace) -> int:
    """``--request FILE``: the install the box asked for, its result written beside it and
    the request removed whatever happens (a path unit must not start it again)."""
    from edge.update.request import BadRequest, read_request, write_result

    path = Path(args.request)
    try:
        request = read_request(path)
    except BadRequest as exc:
        path.unlink(missing_ok=True)
        print(f"update refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    args.from_central, args.sha256 = request.version, request.sha256.removeprefix("sha256:")
    if request.confirm_within_s is not None:  # the rollout's trial window, not the default
        args.confirm_within = request.confirm_within_s
    _say(f"update: install-release {request.version} asked by command {request.command_id}")
    try:
        code, said = _install(args)
    except Exception as exc:  # the result must be written: the box waits for it
        code, said = EXIT_FAILED, f"update failed: {exc!r}; the running release is unchanged"
    write_result(path.parent, request.command_id, code, said)
    path.unlink(missing_ok=True)
    print(said, file=sys.stderr if code else sys.stdout, flush=True)
    return code


def _install(args: argparse.Namespace) -> tuple[int, str]:
    """The update: (exit code, the last thing to say)."""
    from edge.update.fetch import DownloadFailed
    from edge.update.install import UpdateFailed, UpdateOptions, update
    from firmware_protocols.release_manifest import ReleaseRefused

    try:
        bundle = Path(args.from_file) if args.from_file else _fetch(args)
    except ReleaseRefused as exc:
        return EXIT_REFUSED, f"update refused: {exc}"
    except (DownloadFailed, OSError) as exc:
        return EXIT_FAILED, f"update failed: download {exc}; the running release is unchanged"
    options = UpdateOptions(
        bundle=bundle,
        prefix=Path(args.prefix),
        public_key=Path(args.key),
        confirm_within_s=args.confirm_within,
        max_boots=args.max_boots,
        python=Path(args.python) if args.python else None,
    )
    try:
        manifest = update(options, say=_say)
    except ReleaseRefused as exc:
        if not args.from_file:
            bundle.unlink(missing_ok=True)  # a refused download is not kept
        return EXIT_REFUSED, f"update refused: {exc}"
    except UpdateFailed as exc:
        return EXIT_FAILED, f"update failed at {exc}; the running release is unchanged"
    except OSError as exc:
        return EXIT_FAILED, f"update failed: {exc}; the running release is unchanged"
    if not args.from_file:
        bundle.unlink(missing_ok=True)  # installed: the slot holds it now
    if Layout(Path(args.prefix)).load().trial is None:
        return (
            EXIT_OK,
            f"update: parkgrid {manifest.version} installed (the first release on this box)",
        )
    return EXIT_OK, (
        f"update: parkgrid {manifest.version} installed and switched to, on trial; "
        "now restart the box (sudo systemctl restart parkgrid-edge): it must pass its health "
        f"gate within {args.confirm_within:g} s of starting or it goes back by itself"
    )


def cmd_boot_check(args: argparse.Namespace) -> int:
    from edge.update.boot_check import boot_check

    data_dir = Path(args.data_dir) if args.data_dir else None
    decision = boot_check(Layout(Path(args.prefix)), data_dir=data_dir)
    _say(f"boot-check: {decision.said}")
    return EXIT_OK if decision.slot is not None else EXIT_FAILED


def cmd_confirm(args: argparse.Namespace) -> int:
    from edge.config import ConfigError, load_config
    from edge.update.gate import confirm

    try:
        listen = load_config(args.config).health.listen
    except ConfigError as exc:
        print(f"confirm: {exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK if confirm(Layout(Path(args.prefix)), listen, say=_say) else EXIT_FAILED


def cmd_releases(args: argparse.Namespace) -> int:
    layout = Layout(Path(args.prefix))
    state = layout.load()
    current = layout.current_slot()
    history = state.history[-args.history :] if args.history else []
    view: dict[str, object] = {
        "current": current,
        "good": state.good,
        "slots": {slot: layout.slot_version(slot) for slot in SLOTS},
        "trial": None if state.trial is None else asdict(state.trial),
        "history": history,
    }
    if args.json:
        print(json.dumps(view, indent=1))
        return EXIT_OK
    for slot in SLOTS:
        mark = "*" if slot == current else " "
        good = " (good)" if slot == state.good else ""
        print(f"{mark} slot {slot}: {layout.slot_version(slot) or '-'}{good}")
    if state.trial is not None:
        t = state.trial
        print(f"  on trial: {t.version} in slot {t.slot}, start {t.boots} of {t.max_boots}")
    for entry in history:
        print(f"  {entry['event']}: {entry.get('version')} {entry.get('reason', '')}".rstrip())
    return EXIT_OK


def add_commands(subs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subs.add_parser(
        "update", help="install a signed release bundle (USB stick) into the other slot"
    )
    source = up.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="from_file", help="the bundle file (a USB stick)")
    source.add_argument(
        "--from-central", metavar="VERSION", help="download release VERSION from central"
    )
    source.add_argument("--from-url", help="download the bundle from this URL (central's)")
    source.add_argument(
        "--request",
        help="run the install the box asked for in this file (central's install-release; "
        "parkgrid-edge-release.service), write its result beside it",
    )
    up.add_argument(
        "--central-url",
        default=os.environ.get("PARKGRID_CENTRAL_URL"),
        help="central's HTTP(S) address, for --from-central (env PARKGRID_CENTRAL_URL)",
    )
    up.add_argument(
        "--token-file", default=DEFAULT_TOKEN, help="the box's central token (role box)"
    )
    up.add_argument(
        "--data-dir", default=DEFAULT_DATA, help="downloads are kept in DATA_DIR/downloads"
    )
    up.add_argument(
        "--sha256",
        type=_sha256_arg,
        help="with --from-central/--from-url: the whole file's sha256 (64 hex, or "
        "'sha256:<64 hex>'), checked before anything else (central's install-release)",
    )
    up.add_argument("--prefix", default=DEFAULT_PREFIX, help="where the slots live")
    up.add_argument("--key", default=DEFAULT_KEY, help="the release public key")
    up.add_argument(
        "--confirm-within",
        type=float,
        default=600.0,
        help="seconds from its first start for the new release to pass its gate",
    )
    up.add_argument(
        "--max-boots",
        type=int,
        default=3,
        help="starts the new release gets to be confirmed (crash on start)",
    )
    up.add_argument("--python", help="the interpreter the slot's venv is made from")
    up.set_defaults(handler=cmd_update)

    check = subs.add_parser("boot-check", help="before each start: roll back a failed trial")
    check.add_argument("--prefix", default=DEFAULT_PREFIX)
    check.add_argument(
        "--data-dir",
        default=DEFAULT_DATA,
        help="the box's stores, migrated down to what a release rolled back to knows "
        "('' to leave them)",
    )
    check.set_defaults(handler=cmd_boot_check)

    conf = subs.add_parser("confirm", help="after a start: confirm a trial when its gate passes")
    conf.add_argument("--prefix", default=DEFAULT_PREFIX)
    conf.add_argument("--config", default=DEFAULT_CONFIG, help="the box's edge.toml")
    conf.set_defaults(handler=cmd_confirm)

    rel = subs.add_parser("releases", help="the slots, the trial and the update history")
    rel.add_argument("--prefix", default=DEFAULT_PREFIX)
    rel.add_argument("--history", type=int, default=10)
    rel.add_argument("--json", action="store_true")
    rel.set_defaults(handler=cmd_releases)
