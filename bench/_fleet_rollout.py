"""The fleet bench's rollouts, through central's own engine, and the power cuts.

``roll_out`` runs ``parkgrid central fleet rollout VERSION --town T --trial-window S`` (the
admin's command) and follows the rollout in central's store until it is done or halted; the
boxes do the rest themselves: each gets ``install-release``, its own runner (``edge update
--request``, started by the box: there is no root path unit on a bench) downloads and
installs the release, the box exits 75 and its unit starts it again into the new slot, on
trial, and its confirm or its boot check decides.

A power cut (``kill -9`` of every process of the box, the runner and its pip included) is
placed at one update step of one box by watching that box's own log: the runner's lines as
the box logs them (``update: step N/6 ...``), the ``.part`` file of the download growing, and
the unit's own lines and phase around the restart. The box comes back by itself; central
sends the install again to a box back on a new boot without it (``rollout_plan.outcome``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench._fleet_town import SITE_ID, Box, Town
from bench._fleet_unit import Unit
from edge.update.slots import Layout

# The update's own steps, as it prints them, then the unit's around the restart.
UPDATE_STEPS = ("download", "verify", "disk", "unpack", "slot", "trial", "switch")
UNIT_STEPS = ("restart", "boot-check", "confirm")
STEPS = UPDATE_STEPS + UNIT_STEPS
SETTLE_S = 420.0  # a bound for a loaded 2-core machine, not a figure
ROLLOUT_BOUND_S = 3600.0
POLL_S = 1.0
RESTART_MARK = "edge run exited 75"  # the unit's line: the box asks to start the new slot
STOPPING_MARK = "switched to; restarting into it"  # the box's line: it replies, then stops
END_STATES = ("done", "halted", "rolled_back")


@dataclass
class Kill:
    step: str
    box: str
    landed: str = ""  # what the box was doing when the power went
    came_back_on: str | None = None
    back_in_s: float | None = None


@dataclass
class Rollout:
    version: str
    id: int = 0
    state: str = ""
    reason: str = ""
    boxes: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # wave, state, why
    seconds: float = 0.0

    @property
    def reached(self) -> list[str]:
        """The boxes the install command went to."""
        quiet = ("waiting", "offline-deferred", "skipped")
        return sorted(b for b, (_, state, _) in self.boxes.items() if state not in quiet)

    @property
    def halted(self) -> bool:
        return self.state == "halted"


def running_version(box: Box) -> str | None:
    layout = Layout(box.prefix)
    slot = layout.current_slot()
    return layout.slot_version(slot) if slot else None


class LogWatch:
    """What a box's log says from now on."""

    def __init__(self, box: Box) -> None:
        self.path = box.log
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace")


class CentralRollouts:
    def __init__(
        self,
        town: Town,
        units: dict[str, Unit],
        *,
        trial_window_s: float,
        confirm_timeout_s: float,
        say: Callable[[str], None] = print,
    ) -> None:
        self.town, self.units = town, units
        self.trial_window_s, self.confirm_timeout_s = trial_window_s, confirm_timeout_s
        self.say = say
        self._said = threading.Lock()
        self._over = threading.Event()

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

    def _cut_at(self, box: Box, kill: Kill) -> None:
        """Watch the box until ``kill.step``, cut its power there, see it come back."""
        watch, unit = LogWatch(box), self.units[box.box_id]
        downloads = box.data / "downloads"
        starts = 0
        while not self._over.is_set():
            said = watch.text()
            landed = ""
            if kill.step == "download":
                if any(downloads.glob("*.part")):
                    landed = "download (the .part file growing)"
                elif "step 1/6" in said:
                    landed = "verify (the download had finished)"
            elif kill.step in UPDATE_STEPS:
                if f"/6 {kill.step}" in said:
                    landed = f"{kill.step} (just after the box's runner said it)"
            elif kill.step == "restart":
                if STOPPING_MARK in said:
                    landed = "restart (the box replying and stopping to start the new slot)"
            elif RESTART_MARK in said:
                if not starts:
                    starts = unit.starts
                elif kill.step == "boot-check" and unit.phase == "boot-check":
                    landed = "boot-check (the unit running it)"
                elif kill.step == "confirm" and unit.phase == "confirming" and unit.starts > starts:
                    time.sleep(1.0)  # the confirm polling the gate
                    landed = f"confirm (the unit {unit.phase})"
            if landed:
                unit.power_cut()
                kill.landed = landed
                break
            time.sleep(0.01)
        else:
            return
        cut_at = time.monotonic()
        ok = self.settled(box)
        kill.back_in_s = time.monotonic() - cut_at if ok else None
        kill.came_back_on = running_version(box) if ok else None
        self._log(
            f"  kill -9 {box.box_id} at {kill.landed}: "
            + (f"back on {kill.came_back_on} in {kill.back_in_s:.1f} s" if ok else "NOT back")
        )

    def rollback_time(self, box: Box, version: str, good: str) -> float | None:
        """From the box's restart into ``version`` to running ``good`` again, settled."""
        watch = LogWatch(box)
        deadline = time.monotonic() + ROLLOUT_BOUND_S
        while RESTART_MARK not in watch.text():
            if time.monotonic() > deadline or self._over.is_set():
                return None
            time.sleep(0.05)
        restarted = time.monotonic()
        while time.monotonic() < deadline:
            on_trial = Layout(box.prefix).load().trial is not None
            if not on_trial and running_version(box) == good and self.settled(box, 1.0):
                return time.monotonic() - restarted
            time.sleep(0.2)
        return None

    # --- central --------------------------------------------------------------------------

    def _read(self, rollout: Rollout) -> None:
        conn = sqlite3.connect(f"file:{self.town.db_path}?mode=ro", uri=True, timeout=30)
        try:
            rollout.state, rollout.reason = conn.execute(
                "SELECT state, coalesce(reason, '') FROM rollouts WHERE id = ?", (rollout.id,)
            ).fetchone()
            rows = conn.execute(
                "SELECT box_id, wave, state, coalesce(reason, '') FROM rollout_boxes "
                "WHERE rollout_id = ?",
                (rollout.id,),
            ).fetchall()
        finally:
            conn.close()
        rollout.boxes = {box: (wave, state, why) for box, wave, state, why in rows}

    def roll_out(
        self, version: str, kills: dict[str, str], *, canary_back_to: str | None = None
    ) -> tuple[Rollout, list[Kill], float | None]:
        """The rollout by central, the cuts, and (``canary_back_to``) the canary's own
        rollback time."""
        self._over.clear()
        boxes = {b.box_id: b for b in self.town.boxes}
        cuts = [Kill(step, box) for box, step in kills.items()]
        watchers = [
            threading.Thread(target=self._cut_at, args=(boxes[k.box], k), daemon=True) for k in cuts
        ]
        canary_watch: dict[str, float | None] = {}
        canary_box = self.town.boxes[0]  # online boxes first, by id: central's canary
        if canary_back_to is not None:
            watchers.append(
                threading.Thread(
                    target=lambda: canary_watch.update(
                        r=self.rollback_time(canary_box, version, canary_back_to)
                    ),
                    daemon=True,
                )
            )
        for thread in watchers:
            thread.start()
        started = time.monotonic()
        done = self.town.central_cli(
            "fleet", "rollout", version, "--town", SITE_ID,
            "--trial-window", f"{self.trial_window_s:g}",
            "--confirm-timeout", f"{self.confirm_timeout_s:g}", "--json",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"fleet rollout {version}: {done.stderr.strip()}")
        rollout = Rollout(version, id=int(json.loads(done.stdout)["id"]))
        self._log(
            f"{version}: central's rollout {rollout.id} started (--trial-window "
            f"{self.trial_window_s:g}, --confirm-timeout {self.confirm_timeout_s:g})"
        )
        seen: dict[str, str] = {}
        while time.monotonic() - started < ROLLOUT_BOUND_S:
            self._read(rollout)
            for box, (wave, state, why) in sorted(rollout.boxes.items()):
                if seen.get(box) != state:
                    seen[box] = state
                    at = time.monotonic() - started
                    self._log(f"  {at:6.0f} s  {box} (wave {wave}): {state}"
                              + (f" ({why})" if why else ""))  # fmt: skip
            if rollout.state in END_STATES:
                break
            time.sleep(POLL_S)
        rollout.seconds = time.monotonic() - started
        for thread, kill in zip(watchers, cuts, strict=False):
            if kill.landed:  # a cut box still coming back
                thread.join(SETTLE_S)
        self._over.set()
        for thread in watchers:
            thread.join(SETTLE_S)
        if canary_box.box_id not in rollout.reached:
            canary_watch["r"] = None
        status = self.town.central_cli("fleet", "rollout", "status", str(rollout.id))
        for line in status.stdout.strip().splitlines():
            self._log(f"  | {line}")
        return rollout, cuts, canary_watch.get("r")
