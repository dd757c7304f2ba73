"""Fleet: 20 boxes updated as a fleet, a good release everywhere, a bad one halted and undone.

    .venv/bin/python bench/fleet.py [--boxes 20] [--parallel 4] [--trial-window 60]
                                    [--confirm-timeout 600] [--steps download,verify,...]
                                    [--work DIR]

Goal (issue 20): every box to N+1; N+2, which starts and then fails its health gate, reaches
one box (the canary) before the rollout halts (K = 1), and the canary rolls itself back
within 120 s (R <= 120); no event lost at central (L = 0); a tampered and an older bundle
offered to a box are refused.

What runs, all real processes (docs/fleet.md, "Measured"):

* a Mosquitto with the field configuration (``provision-box``'s passwords and ACL, a box
  token each for central's HTTP API), ``central serve`` with its ingest and release store;
* per box a concentrator simulator on a pty (4 sensors heard, a bay changing every 3 s)
  and ``parkgrid edge run`` from the box's own install folder with two slots
  (``edge/update/slots.py``), under a stand-in of its systemd unit (``bench/_fleet_unit.py``:
  boot check before each start, confirm after it, restart on exit with the unit's
  ``RestartSec``);
* releases built from this checkout: N, N+1, and N+2 from a copy whose uplink dials the
  broker's port + 1 (``bench/_fleet_releases.py``), N+1 and N+2 added to central;
* the rollouts by central itself (``bench/_fleet_rollout.py``): ``parkgrid central fleet
  rollout N+1 --town T --trial-window S``, then N+2, followed in central's store until done or
  halted; each box gets ``install-release``, runs its own runner (``edge update --request``,
  the box's unit environment giving it central's URL, its token, the release key and its
  prefix), exits 75 into the new slot on trial, and its confirm or boot check decides. While
  N+1 goes out, one box per update step (download, verify, disk, unpack, slot, trial, switch,
  restart, boot-check, confirm) has the power cut (``kill -9`` of every process of the box, its
  runner and pip included) at that step, placed by watching the box's own log, must come back
  on a working release, and gets N+1 again from central.

The first installs (N into slot a of every box, by ``edge update`` from a file, as a first
release) run ``--parallel`` at a time. The last line is the verdict.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._fleet_releases import build  # noqa: E402
from bench._fleet_rollout import STEPS, CentralRollouts, running_version  # noqa: E402
from bench._fleet_town import Box, Town, wait_until  # noqa: E402
from bench._fleet_unit import ENV, Unit  # noqa: E402

VERSIONS = ("1.0.0", "1.0.1", "1.0.2")
GOAL_R_S = 120.0


def say(line: str) -> None:
    print(line, flush=True)


def _edge_update(
    program: list[str], box: Box, bundle: Path, public_key: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``parkgrid edge update --from BUNDLE`` into the box's prefix, run by ``program``."""
    return subprocess.run(
        [*program, "edge", "update", "--from", str(bundle), "--prefix", str(box.prefix),
         "--key", str(public_key)],
        capture_output=True, text=True, env=ENV, timeout=timeout,
    )  # fmt: skip


def first_install(box: Box, bundle: Path, public_key: Path) -> float:
    started = time.monotonic()
    done = _edge_update([sys.executable, "-m", "parkgrid"], box, bundle, public_key, 900)
    if done.returncode != 0:
        raise RuntimeError(f"{box.box_id}: first install: {done.stderr[-1500:]}")
    return time.monotonic() - started


def offer(box: Box, bundle: Path, public_key: Path) -> tuple[int, str]:
    """A bundle offered to a box as a technician would (USB stick): exit code, what it said."""
    program = [str(box.prefix / "current" / "bin" / "parkgrid")]
    done = _edge_update(program, box, bundle, public_key, 600)
    return done.returncode, (done.stderr or done.stdout).strip().splitlines()[-1]


def unit_environment(town: Town, box: Box, public_key: Path) -> dict[str, str]:
    """What the box's /etc/parkgrid/edge.env gives its unit to take releases from central
    (edge/release_command.py). No root path unit runs on a bench, so the box starts its
    runner itself (``PARKGRID_RELEASE_RUNNER=process``, docs/fleet.md)."""
    return {
        "PARKGRID_CENTRAL_URL": town.central_url,
        "PARKGRID_CENTRAL_TOKEN_FILE": str(box.etc / "central-token"),
        "PARKGRID_RELEASE_KEY": str(public_key),
        "PARKGRID_RELEASE_PREFIX": str(box.prefix),
        "PARKGRID_RELEASE_RUNNER": "process",
    }


def count_events(town: Town) -> tuple[int, int, int, list[str]]:
    """Lost (a seq the box's outbox numbered that central has no row of, less what the box
    itself dropped and reported), duplicated (a seq or a bay change twice at central), and
    how many rows central holds."""
    seqs = town.central_seqs()
    lost, notes = 0, []
    for box in town.boxes:
        outbox = town.outbox(box)
        have = set(seqs.get(box.box_id, []))
        missing = [s for s in range(1, outbox["last_seq"] + 1) if s not in have]
        gap = max(0, len(missing) - outbox["dropped"])
        lost += gap
        if gap or outbox["queued"]:
            notes.append(
                f"{box.box_id}: outbox seq 1..{outbox['last_seq']}, {outbox['queued']} "
                f"still queued, missing at central {missing[:10]}"
            )
    rows = sum(len(v) for v in seqs.values())
    twice = rows - sum(len(set(v)) for v in seqs.values())
    changes = Counter(town.central_bay_changes())
    twice += sum(n - 1 for n in changes.values() if n > 1)
    return lost, twice, rows, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--boxes", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4, help="installs at a time")
    parser.add_argument(
        "--trial-window",
        type=float,
        default=60.0,
        help="the rollouts' --trial-window: a new release's time to pass its gate (s)",
    )
    parser.add_argument(
        "--confirm-timeout",
        type=float,
        default=600.0,
        help="the rollouts' --confirm-timeout: a box's time from its install command (s)",
    )
    parser.add_argument("--steps", default=",".join(STEPS), help="the steps to cut power at")
    parser.add_argument("--work", type=Path, help="keep everything in this folder")
    args = parser.parse_args()
    n, good, bad = VERSIONS
    say(
        f"goal: {args.boxes} boxes to {good}; {bad} halted after 1 box (the canary), rolled "
        f"back in <= {GOAL_R_S:g} s; 0 events lost; a tampered and an older bundle refused"
    )
    work = args.work or Path(tempfile.mkdtemp(prefix="parkgrid-fleet-"))
    say(f"work folder: {work}")
    releases = build(work / "releases", VERSIONS, say=say)
    town = Town(work / "town", args.boxes)
    started = time.monotonic()
    town.provision()
    say(
        f"town: {args.boxes} boxes provisioned (provision-box --central-token) in "
        f"{time.monotonic() - started:.1f} s"
    )
    units: dict[str, Unit] = {}
    try:
        town.start()
        for version in (good, bad):
            added = town.central_cli(
                "release", "add", str(releases.bundles[version]), "--key", str(releases.public_key)
            )
            if added.returncode != 0:
                raise RuntimeError(f"central release add {version}: {added.stderr}")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            took = list(
                pool.map(
                    lambda b: first_install(b, releases.bundles[n], releases.public_key), town.boxes
                )
            )
        say(
            f"first installs of {n}: {len(took)} in {time.monotonic() - started:.0f} s, "
            f"{args.parallel} at a time; one slot took {min(took):.0f} to {max(took):.0f} s"
        )
        for box in town.boxes:
            units[box.box_id] = Unit(
                box.box_id, box.prefix, box.config, box.data, box.log,
                env=unit_environment(town, box, releases.public_key),
            ).start()  # fmt: skip
        driver = CentralRollouts(
            town,
            units,
            trial_window_s=args.trial_window,
            confirm_timeout_s=args.confirm_timeout,
            say=say,
        )
        if not all(driver.settled(box) for box in town.boxes):
            raise RuntimeError("not every box is up on the first release")
        say(f"all {args.boxes} boxes up on {n}, connected; bay changes start")
        town.changing(True)

        steps = [s for s in args.steps.split(",") if s]
        kills = dict(zip([b.box_id for b in town.boxes[1:]], steps, strict=False))
        first, cut, _ = driver.roll_out(good, kills)
        on_good = [b for b in town.boxes if running_version(b) == good]
        t_good = first.seconds
        confirmed = sum(state == "confirmed" for _, state, _ in first.boxes.values())
        say(
            f"{good}: central's rollout {first.state}; {len(on_good)} of {args.boxes} boxes "
            f"run it, {confirmed} confirmed at central, in {t_good:.0f} s"
        )
        for kill in cut:
            say(
                f"  kill -9 at {kill.step:<10} {kill.box}: landed at {kill.landed or '-'}; back on "
                f"{kill.came_back_on} in " + (f"{kill.back_in_s:.0f} s" if kill.back_in_s else "-")
            )

        target = next(
            (b for b in reversed(town.boxes) if running_version(b) == good), town.boxes[-1]
        )
        tampered_rc, tampered_said = offer(target, releases.tampered, releases.public_key)
        older_rc, older_said = offer(target, releases.bundles[n], releases.public_key)
        still = running_version(target)
        say(f"tampered {bad} offered to {target.box_id}: exit {tampered_rc}: {tampered_said}")
        say(f"older {n} offered to {target.box_id}: exit {older_rc}: {older_said}")
        say(f"{target.box_id} still runs {still}")
        refused = tampered_rc == 2 and older_rc == 2 and still == good

        second, _, r = driver.roll_out(bad, {}, canary_back_to=good)
        k = len(second.reached)
        say(
            f"{bad}: central's rollout {second.state} after {second.seconds:.0f} s; reached {k} "
            f"box(es) {second.reached}; {second.reason}"
        )
        say(
            f"{bad}: the canary back on {good} by itself in "
            + (f"{r:.0f} s" if r is not None else "- (not measured)")
        )

        town.changing(False)
        drained = wait_until(lambda: all(town.outbox(b)["queued"] == 0 for b in town.boxes), 180)
        time.sleep(3)
        say(f"bay changes sent: {town.changes_sent}; outboxes drained: {drained}")
    finally:
        for unit in units.values():
            unit.stop()
        town.stop()
    lost, twice, rows, notes = count_events(town)
    for note in notes:
        say(f"  {note}")
    say(f"events at central: {rows} rows; lost {lost}, duplicated {twice}")
    bays = town.central_bays()
    wrong = sorted(
        bay for bay, occ in town.truth.items() if bays.get(bay) != ("occupied" if occ else "free")
    )
    say(
        f"bays changed by the sensors: {len(town.truth)}; central's state differs from the "
        f"sensors' on {len(wrong)}" + (f": {wrong[:8]}" if wrong else "")
    )
    final = Counter(running_version(b) for b in town.boxes)
    say(f"releases the boxes run at the end: {dict(final)}")
    kills_ok = all(c.came_back_on in (n, good) for c in cut) and all(c.landed for c in cut)
    ok = (
        len(on_good) == args.boxes
        and first.state == "done"
        and k == 1
        and second.halted
        and r is not None
        and r <= GOAL_R_S
        and lost == 0
        and twice == 0
        and refused
        and kills_ok
        and not wrong
    )
    say(
        f"kills: {len(cut)} at {', '.join(k.step for k in cut)}; all came back on a working "
        f"release: {kills_ok}"
    )
    r_text = f"{r:.0f}" if r is not None else "-"
    say(
        f"fleet: {args.boxes} boxes to N+1 in {t_good:.0f} s, N+2 halted after {k} box(es), "
        f"rolled back in {r_text} s, lost {lost}, tampered refused: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
