"""``parkgrid central fleet rollout|rollouts|halt|resume|rollback``: the rollouts from the shell.

They read the site file and the store as ``central serve`` does (``PARKGRID_SITE_FILE``,
``PARKGRID_DATABASE_URL``, ``PARKGRID_RELEASES_DIR``) and write the rollout's rows and audit
rows (as ``cli:<user>``); the engine of the ``central serve`` holding the lease sends the
commands. Exit codes: 0 done, 2 refused (nothing changed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from typing import Any

from central.fleet.rollout_models import DEFAULT_CONFIRM_TIMEOUT_S
from central.fleet.rollout_plan import DEFAULT_WINDOW

EXIT_OK, EXIT_USAGE = 0, 2
Common = Callable[[argparse.ArgumentParser], None]


def configure(commands: Any, common: Common) -> None:
    """Add the rollout commands to ``fleet``'s subcommands; ``common``: its shared options."""
    rollout = commands.add_parser(
        "rollout",
        help="VERSION --town T: roll a stored release out in waves (admin; audited); "
        "'rollout status ID': one rollout, box by box",
    )
    common(rollout)
    rollout.add_argument("what", nargs="+", metavar="VERSION | status ID")
    rollout.add_argument("--town", help="the town (the site file's id)")
    rollout.add_argument("--canary", type=int, default=1, help="boxes in the first wave (1)")
    rollout.add_argument(
        "--share", type=int, default=25, help="percent of the other boxes in wave two (25)"
    )
    rollout.add_argument(
        "--max-failures", type=int, default=1, help="halt when this many boxes failed (1)"
    )
    rollout.add_argument(
        "--confirm-timeout",
        type=float,
        default=DEFAULT_CONFIRM_TIMEOUT_S,
        help=f"seconds a box has to confirm after its install ({DEFAULT_CONFIRM_TIMEOUT_S:g})",
    )
    rollout.add_argument(
        "--trial-window",
        type=float,
        default=None,
        metavar="S",
        help="seconds each box's new release has from its first start to pass its health "
        "gate, else it rolls itself back (30-3600; default: the box's own, 600); "
        "--confirm-timeout must be longer",
    )
    rollout.add_argument(
        "--window",
        default=DEFAULT_WINDOW,
        help=f"when a box back online gets it, town time ({DEFAULT_WINDOW})",
    )
    rollout.add_argument("--json", action="store_true", help="one JSON document")
    rollout.set_defaults(handler=_rollout)
    listing = commands.add_parser("rollouts", help="the rollouts, newest first")
    common(listing)
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(handler=_list)
    for name, text in (("halt", "halt a running rollout"), ("resume", "resume a halted one")):
        action = commands.add_parser(name, help=f"{text} (admin; audited)")
        common(action)
        action.add_argument("rollout_id", type=int, metavar="ID")
        action.set_defaults(handler=_act, action=name)
    back = commands.add_parser(
        "rollback",
        help="ID --to VERSION: take the boxes a rollout reached to a --rollback release "
        "(admin; audited)",
    )
    common(back)
    back.add_argument("rollout_id", type=int, metavar="ID")
    back.add_argument(
        "--to", required=True, metavar="VERSION", help="a release built with --rollback"
    )
    back.set_defaults(handler=_act, action="rollback")


def _loaded(args: argparse.Namespace) -> Any:
    from central.fleet.cli import _load

    return _load(args)


def _rollout(args: argparse.Namespace) -> int:
    from central.errors import CentralError
    from central.fleet import rollout_store
    from central.fleet.rollout_models import RolloutIn

    if args.what[0] == "status":
        if len(args.what) != 2 or not args.what[1].isdigit():
            print("fleet rollout status: give one rollout ID (fleet rollouts lists them)",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        loaded = _loaded(args)
        if loaded is None:
            return EXIT_USAGE
        try:
            _show(rollout_store.get(loaded[2], int(args.what[1])), as_json=args.json)
        except CentralError as exc:
            print(f"fleet: {exc.detail}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    if len(args.what) != 1 or args.town is None:
        print("fleet rollout: give one VERSION and --town T", file=sys.stderr)
        return EXIT_USAGE
    loaded = _loaded(args)
    if loaded is None:
        return EXIT_USAGE
    settings, site, engine = loaded
    try:
        out = rollout_store.start(
            engine,
            site,
            releases_dir=settings.releases_dir,
            request=RolloutIn(
                version=args.what[0],
                town=args.town,
                canary=args.canary,
                share=args.share,
                max_failures=args.max_failures,
                confirm_timeout_s=args.confirm_timeout,
                trial_window_s=args.trial_window,
                window=args.window,
            ),
            actor=f"cli:{getpass.getuser()}",
        )
    except CentralError as exc:
        print(f"fleet: {exc.detail}", file=sys.stderr)
        return EXIT_USAGE
    _show(out, as_json=args.json)
    print(f"then: parkgrid central fleet rollout status {out.id}", file=sys.stderr)
    return EXIT_OK


def _act(args: argparse.Namespace) -> int:
    from central.errors import CentralError
    from central.fleet import rollout_store

    loaded = _loaded(args)
    if loaded is None:
        return EXIT_USAGE
    settings, _site, engine = loaded
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "halt":
            out = rollout_store.halt(engine, args.rollout_id, actor=actor)
        elif args.action == "resume":
            out = rollout_store.resume(engine, args.rollout_id, actor=actor)
        else:
            out = rollout_store.rollback(
                engine,
                args.rollout_id,
                releases_dir=settings.releases_dir,
                version=args.to,
                actor=actor,
            )
    except CentralError as exc:
        print(f"fleet: {exc.detail}", file=sys.stderr)
        return EXIT_USAGE
    _show(out, as_json=False)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from central.fleet import rollout_store

    loaded = _loaded(args)
    if loaded is None:
        return EXIT_USAGE
    rollouts = rollout_store.list_rollouts(loaded[2])
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rollouts], indent=2))
        return EXIT_OK
    for r in rollouts:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(r.counts.items()))
        print(f"{r.id:>4}  {r.kind:<8} {r.version:<12} {r.town:<12} {r.state:<11} "
              f"wave {r.wave:<6} {counts}")  # fmt: skip
    return EXIT_OK


def _trial(seconds: float | None) -> str:
    return "the box's default" if seconds is None else f"{seconds:g} s"


def _show(rollout: Any, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rollout.model_dump(mode="json"), indent=2))
        return
    of = f" of rollout {rollout.rollback_of}" if rollout.rollback_of else ""
    print(f"{rollout.kind} {rollout.id}{of}: {rollout.version} to {rollout.town}, "
          f"{rollout.state}, wave {rollout.wave}; canary {rollout.canary}, share "
          f"{rollout.share} %, halts at {rollout.max_failures} failure(s), confirm within "
          f"{rollout.confirm_timeout_s:g} s, trial window {_trial(rollout.trial_window_s)}, "
          f"window {rollout.window}")  # fmt: skip
    if rollout.reason:
        print(f"  {rollout.reason}")
    for box in rollout.boxes:
        print(f"  {box.box_id:<16} {box.wave:<7} {box.state:<17} {box.reason or ''}".rstrip())
