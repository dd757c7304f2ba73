"""``parkgrid edge boot-check``: run by the unit before every start (``ExecStartPre``).

In the style of RAUC's and Mender's boot counters: a release on trial gets ``max_boots``
starts and ``confirm_within_s`` seconds from its first start to be confirmed by the health
gate (``edge confirm``); past either, or when the confirm gave up, the ``current`` symlink
goes back to the slot it came from. It also repairs what a power cut can leave: a trial
whose switch never happened, or a ``current`` that does not name a complete slot.

Before it goes back, it takes the box's stores (the outbox, the zone store in ``data_dir``)
down to the schemas the older release knows (``store_schemas``), then switches: a power cut
in between starts the newer release again, which reads and migrates forward what it finds,
and the next boot check does both again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge.update.slots import SLOTS, Layout, State, Trial
from edge.update.store_schemas import migrate_down_to, slot_versions


@dataclass(frozen=True, slots=True)
class BootDecision:
    slot: str | None  # the slot the unit will start; None: no working release at all
    said: str


def rollback_reason(trial: Trial, now: float) -> str | None:
    """Why a trial that is starting again must end, or None while it may go on."""
    if trial.gate_failed:
        return f"failed its health gate: {trial.gate_failed}"
    if trial.boots > trial.max_boots:
        return f"started {trial.max_boots} times without being confirmed (crashed on start?)"
    if trial.since is not None and now - trial.since > trial.confirm_within_s:
        return f"not confirmed within {trial.confirm_within_s:g} s of its first start"
    return None


def _complete(layout: Layout, slot: str | None) -> bool:
    return slot is not None and layout.slot_version(slot) is not None


def _repair_current(layout: Layout, state: State) -> str | None:
    """Point ``current`` at a complete slot if it does not name one; the slot or None."""
    current = layout.current_slot()
    if _complete(layout, current) or (current and (layout.slot_dir(current) / "bin").is_dir()):
        return current  # complete, or made by install-box.sh before release files existed
    for candidate in (state.good, *SLOTS):
        if candidate is not None and _complete(layout, candidate):
            layout.point_current_at(candidate)
            state.note("repaired", layout.slot_version(candidate), f"current -> {candidate}")
            return candidate
    return None


def stores_back(layout: Layout, slot: str, data_dir: Path | None) -> str:
    """The stores of ``data_dir`` down to what ``slot``'s release knows; what was said."""
    if data_dir is None:
        return ""
    versions, how = slot_versions(layout.slot_dir(slot))
    try:
        done = migrate_down_to(data_dir, versions)
    except (OSError, ValueError, sqlite3.Error) as exc:
        return f"stores not migrated down ({exc}); "
    if not done:
        return ""
    return f"stores migrated down for it ({how}): {'; '.join(done)}; "


def boot_check(
    layout: Layout, now: float | None = None, data_dir: Path | None = None
) -> BootDecision:
    now = time.time() if now is None else now
    state = layout.load()
    current = _repair_current(layout, state)
    trial = state.trial
    said = ""
    if state.unreadable:
        said = f"{layout.state_file.name} unreadable, started afresh ({state.unreadable}); "
    if trial is not None and current != trial.slot:
        # the power went between the trial's record and the switch: the old release stays
        state.note("interrupted", trial.version, "the switch never happened; kept the old one")
        state.trial = None
        said = f"the install of {trial.version} was interrupted before its switch; "
    elif trial is not None:
        trial.boots += 1
        if trial.since is None:
            trial.since = now
        reason = rollback_reason(trial, now)
        if reason is not None and _complete(layout, trial.from_slot):
            stores = stores_back(layout, trial.from_slot, data_dir)
            layout.point_current_at(trial.from_slot)
            state.note("rolled back", trial.version, reason)
            state.trial, current = None, trial.from_slot
            said = f"rolled back from {trial.version}: it {reason}; {stores}"
        elif reason is not None:
            state.note("kept", trial.version, f"{reason}, but slot {trial.from_slot} is gone")
            state.trial = None
            said = f"{trial.version} {reason}, and there is no slot to return to; "
        else:
            said = (
                f"{trial.version} on trial: start {trial.boots} of {trial.max_boots}, "
                f"confirm within {trial.confirm_within_s:g} s; "
            )
    layout.save(state)
    if current is None:
        return BootDecision(slot=None, said=f"{said}no complete release under {layout.prefix}")
    version = layout.slot_version(current) or "unknown version"
    return BootDecision(slot=current, said=f"{said}starting {version} from slot {current}")
