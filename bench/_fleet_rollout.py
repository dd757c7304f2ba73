"""The fleet bench's rollout driver: waves of ``parkgrid edge update --from-central`` run on
each box, the unit restarted, the box's own confirm or rollback awaited, a halt at the first
failure; and the power cuts (``kill -9`` of every process of a box) at a chosen step.

This is the stand-in for ``parkgrid central fleet rollout`` until it lands: ``roll_out`` is
the one function the bench calls to roll a release out.
"""

from __future__ import annotations

import math
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench._fleet_town import Box, Town
from bench._fleet_unit import ENV, Unit, signal_group
from edge.update.slots import Layout

# The update's own steps, as it prints them, then the unit's around the restart.
UPDATE_STEPS = ("download", "verify", "disk", "unpack", "slot", "trial", "switch")
UNIT_STEPS = ("restart", "boot-check", "confirm")
STEPS = UPDATE_STEPS + UNIT_STEPS
SETTLE_S = 420.0  # a bound for a loaded 2-core machine, not a figure


@dataclass
class Kill:
    step: str
    box: str
    landed: str = ""  # what the box was doing when the power went
    came_back_on: str | None = None
    back_in_s: float | None = None


@dataclass
class BoxOutcome:
    box: str
    result: str = "pending"  # confirmed, rolled back, refused, failed
    reason: str = ""
    update_s: float = 0.0
    kill: Kill | None = None
    attempts: int = 0
    trial_s: float | None = None  # from the restart into it to the box settled again


@dataclass
class Rollout:
    version: str
    outcomes: list[BoxOutcome] = field(default_factory=list)
    halted: bool = False
    waves: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reached(self) -> list[BoxOutcome]:
        """The boxes the release was installed on (switched to)."""
        return [o for o in self.outcomes if o.result in ("confirmed", "rolled back")]


def waves_of(boxes: list[Box]) -> list[list[Box]]:
    """One canary, then a quarter of the rest, then the rest."""
    if not boxes:
        return []
    rest = boxes[1:]
    share = max(1, math.ceil(len(rest) / 4)) if rest else 0
    return [w for w in ([boxes[0]], rest[:share], rest[share:]) if w]


def running_version(box: Box) -> str | None:
    layout = Layout(box.prefix)
    slot = layout.current_slot()
    return layout.slot_version(slot) if slot else None


class Driver:
    def __init__(
        self,
        town: Town,
        units: dict[str, Unit],
        public_key: Path,
        *,
        confirm_within_s: float,
        parallel: int,
        say: Callable[[str], None] = print,
    ) -> None:
        self.town, self.units, self.public_key = town, units, public_key
        self.confirm_within_s = confirm_within_s
        self.parallel = parallel
        self.say = say
        self._said = threading.Lock()

    def _log(self, line: str) -> None:
        with self._said:
            self.say(line)

    # --- one box --------------------------------------------------------------------------

    def settled(self, box: Box, within: float = SETTLE_S) -> bool:
        """The unit running (its confirm done or nothing on trial), nothing on trial, the box
        connected to the broker."""
        unit = self.units[box.box_id]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if (
                unit.phase == "running"
                and Layout(box.prefix).load().trial is None
                and self.town.healthz(box).get("mqtt_connected") is True
            ):
                return True
            time.sleep(0.5)
        return False

    def _cut(self, box: Box, proc: subprocess.Popen[str] | None, kill: Kill, landed: str) -> None:
        self.units[box.box_id].power_cut()
        if proc is not None:
            signal_group(proc, signal.SIGKILL)  # the update and the pip it runs
            proc.wait()
        kill.landed = landed

    def _run_update(self, box: Box, version: str, kill: Kill | None) -> tuple[int | None, str]:
        """``edge update`` by the box's own release; None when the power was cut in it."""
        command = [
            str(box.prefix / "current" / "bin" / "parkgrid"),
            "edge",
            "update",
            "--from-central",
            version,
            "--central-url",
            self.town.central_url,
            "--token-file",
            str(box.etc / "central-token"),
            "--data-dir",
            str(box.data),
            "--prefix",
            str(box.prefix),
            "--key",
            str(self.public_key),
            "--confirm-within",
            f"{self.confirm_within_s:g}",
        ]
        with box.log.open("a") as out:
            out.write(f"[{time.strftime('%H:%M:%S')}] bench: {' '.join(command[1:])}\n")
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV,
            start_new_session=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        want = kill.step if kill is not None and kill.step in UPDATE_STEPS else None
        downloads = box.data / "downloads"
        while proc.poll() is None and want is not None:
            said = "".join(lines)
            if want == "download" and any(downloads.glob("*.part")):
                self._cut(box, proc, kill, "download (the .part file growing)")  # type: ignore[arg-type]
                break
            if want == "download" and "step 1/6" in said:
                self._cut(box, proc, kill, "verify (the download had finished)")  # type: ignore[arg-type]
                break
            marker = f"/6 {want}"
            if want != "download" and marker in said:
                self._cut(box, proc, kill, f"{want} (just after the update said it)")  # type: ignore[arg-type]
                break
            time.sleep(0.01)
        rc = proc.wait()
        reader.join(5)
        with box.log.open("a") as out:
            out.write("".join(lines))
        if kill is not None and kill.landed:
            return None, "".join(lines)
        return rc, "".join(lines)

    def _after_restart_cut(self, box: Box, kill: Kill) -> None:
        unit = self.units[box.box_id]
        if kill.step == "restart":
            unit.restart()
            time.sleep(0.05)
            self._cut(box, None, kill, f"restart (the unit {unit.phase})")
            return
        unit.restart()
        wanted = "boot-check" if kill.step == "boot-check" else "confirming"
        deadline = time.monotonic() + 120
        while unit.phase != wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        if kill.step == "confirm":
            time.sleep(1.0)  # the confirm polling the gate
        self._cut(box, None, kill, f"{kill.step} (the unit {unit.phase})")

    def _await_trial(self, box: Box, version: str, started: float) -> tuple[str, str]:
        """Confirmed, or rolled back (the reason), or still pending after the bound."""
        layout = Layout(box.prefix)
        deadline = started + SETTLE_S
        while time.monotonic() < deadline:
            state = layout.load()
            if state.trial is None:
                if running_version(box) == version:
                    return "confirmed", ""
                for entry in reversed(state.history):
                    if entry.get("event") == "rolled back" and entry.get("version") == version:
                        return "rolled back", str(entry.get("reason", ""))
                return "failed", f"not on {version} and no rollback recorded"
            time.sleep(0.2)
        return "failed", f"still on trial after {SETTLE_S:g} s"

    def update_box(self, box: Box, version: str, kill: Kill | None) -> BoxOutcome:
        outcome = BoxOutcome(box.box_id, kill=kill)
        started = time.monotonic()
        while True:
            outcome.attempts += 1
            cut = kill if outcome.attempts == 1 else None
            rc, said = self._run_update(box, version, cut)
            if rc is None or (cut is not None and cut.step in UNIT_STEPS and rc == 0):
                if rc == 0:
                    self._after_restart_cut(box, cut)  # type: ignore[arg-type]
                assert cut is not None
                self._back_after_cut(box, cut)
                if running_version(box) == version:
                    break  # the trial was confirmed after the cut
                continue  # on the old release again: the rollout offers it again
            if rc != 0:
                outcome.result = "refused" if rc == 2 else "failed"
                outcome.reason = said.strip().splitlines()[-1] if said.strip() else f"exit {rc}"
                outcome.update_s = time.monotonic() - started
                return outcome
            restarted = time.monotonic()
            self.units[box.box_id].restart()
            outcome.result, outcome.reason = self._await_trial(box, version, restarted)
            if self.settled(box):
                outcome.trial_s = time.monotonic() - restarted
            break
        if running_version(box) == version and outcome.result == "pending":
            outcome.result = "confirmed"
        outcome.update_s = time.monotonic() - started
        return outcome

    def _back_after_cut(self, box: Box, kill: Kill) -> None:
        cut_at = time.monotonic()
        ok = self.settled(box)
        kill.back_in_s = time.monotonic() - cut_at if ok else None
        kill.came_back_on = running_version(box) if ok else None
        self._log(
            f"  kill -9 {box.box_id} at {kill.landed}: "
            + (
                f"back on {kill.came_back_on} in {kill.back_in_s:.1f} s"
                if ok
                else f"NOT back within {SETTLE_S:g} s"
            )
        )

    # --- the fleet ------------------------------------------------------------------------

    def roll_out(self, version: str, boxes: list[Box], kills: dict[str, str]) -> Rollout:
        """Waves (canary, a share, the rest); a halt after a wave with any failure."""
        rollout = Rollout(version)
        started = time.monotonic()
        for n, wave in enumerate(waves_of(boxes)):
            rollout.waves.append([b.box_id for b in wave])
            self._log(f"{version}: wave {n + 1} ({len(wave)} box(es))")
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                futures = [
                    pool.submit(
                        self.update_box,
                        box,
                        version,
                        Kill(kills[box.box_id], box.box_id) if box.box_id in kills else None,
                    )
                    for box in wave
                ]
                done = [f.result() for f in futures]
            for o in done:
                self._log(
                    f"  {o.box}: {o.result} in {o.update_s:.1f} s"
                    + (f" ({o.reason})" if o.reason else "")
                )
            rollout.outcomes += done
            if any(o.result != "confirmed" for o in done):
                rollout.halted = True
                self._log(f"{version}: halted after wave {n + 1}")
                break
        rollout.seconds = time.monotonic() - started
        return rollout
