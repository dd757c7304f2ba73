"""A rollout's pure rules: its waves, the maintenance window, and what a box's reports mean.

No I/O here: the store (``rollout_store``) reads and writes rows, the engine
(``rollout_engine``) applies these rules on its beat.

Waves: the canary (``canary`` boxes, online ones first), then ``share`` percent of the rest
(at least one box when any are left), then the rest. A box's states::

    waiting --(its wave starts, online)--> sent --(reply ok)--> installing --> confirmed
       |                                     |                      |
       +--(its wave starts, offline)--> offline-deferred --(back, in the window)--> sent
                                             +---(error reply / rolled_back / timeout)--> failed
    sent --(a new boot, no reply, the old release still confirmed: the install was cut)--> waiting
    skipped: it already ran the release, confirmed, when the rollout started.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from firmware_protocols.uplink.models.commands import TRIAL_WINDOW_MAX_S, TRIAL_WINDOW_MIN_S

BoxState = Literal[
    "waiting", "offline-deferred", "sent", "installing", "confirmed", "failed", "skipped"
]
RolloutState = Literal["running", "halted", "done", "rolled_back"]
Failure = Literal["refused", "rolled_back", "timeout"]

IN_FLIGHT: frozenset[str] = frozenset({"sent", "installing"})
SETTLED: frozenset[str] = frozenset({"confirmed", "failed", "skipped"})
WAVE_NAMES = ("canary", "share", "rest")

# The town's peaks (simulators/town.py, README): the morning from 07:00 to 09:00 and the
# evening from 17:00 to 19:00, with traffic until about 20:00. A box that restarts into a
# new release then shows no free spaces for a minute, so unattended installs wait for the
# quiet night, after the evening and well before the morning.
DEFAULT_WINDOW = "20:00-06:00"
MAX_SPANS = 8
MAX_FAILURES = 100_000
# A box's trial window when the install command does not carry one (edge update's
# --confirm-within default): a rollout's confirm timeout must be longer than the window.
BOX_DEFAULT_TRIAL_WINDOW_S = 600.0
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class PlanError(ValueError):
    """Bad rollout input: ``field`` says where, the message why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Window:
    """Spans of town time, each ``HH:MM-HH:MM``; one that ends before it starts wraps
    midnight (``20:00-06:00``)."""

    spans: tuple[tuple[dt.time, dt.time], ...]
    text: str

    def holds(self, local: dt.time) -> bool:
        for start, end in self.spans:
            if start <= end:
                if start <= local < end:
                    return True
            elif local >= start or local < end:
                return True
        return False


def parse_window(text: str) -> Window:
    """``"20:00-06:00"`` or several spans split by commas; PlanError('window', ...)."""
    spans = []
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > MAX_SPANS:
        raise PlanError("window", f"{len(parts)} spans: give at most {MAX_SPANS}")
    for part in parts:
        match = _SPAN.match(part)
        if match is None:
            raise PlanError(
                "window", f"{part!r} is not HH:MM-HH:MM (24-hour town time, e.g. 20:00-06:00)"
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise PlanError("window", f"{part!r} is empty (it starts where it ends)")
        spans.append((dt.time(h1, m1), dt.time(h2, m2)))
    return Window(tuple(spans), ",".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in spans))


def check_options(
    *,
    canary: int,
    share: int,
    max_failures: int,
    confirm_timeout_s: float,
    trial_window_s: float | None = None,
) -> None:
    if not 0 <= canary <= 100:
        raise PlanError("canary", f"{canary} boxes: give 0 to 100")
    if not 1 <= share <= 100:
        raise PlanError("share", f"{share} %: give a share of the boxes from 1 to 100")
    if not 1 <= max_failures <= MAX_FAILURES:
        raise PlanError(
            "max_failures", f"{max_failures}: the rollout halts at 1 to {MAX_FAILURES} failures"
        )
    if not 10 <= confirm_timeout_s <= 7 * 86400:
        raise PlanError("confirm_timeout_s", f"{confirm_timeout_s} s: give 10 s to 7 days")
    if trial_window_s is not None and not (
        TRIAL_WINDOW_MIN_S <= trial_window_s <= TRIAL_WINDOW_MAX_S
    ):
        raise PlanError(
            "trial_window_s",
            f"{trial_window_s:g} s: give {TRIAL_WINDOW_MIN_S} to {TRIAL_WINDOW_MAX_S} s",
        )
    trial = BOX_DEFAULT_TRIAL_WINDOW_S if trial_window_s is None else trial_window_s
    if confirm_timeout_s <= trial:
        default = ", the box's default" if trial_window_s is None else ""
        raise PlanError(
            "confirm_timeout_s",
            f"{confirm_timeout_s:g} s is not longer than the trial window ({trial:g} s{default}): "
            "a box would be failed by timeout before its own trial ends; give a longer "
            "confirm timeout or a shorter trial window",
        )


def waves(
    boxes: Sequence[str], online: Mapping[str, bool], *, canary: int, share: int
) -> dict[str, int]:
    """Each box's wave: 0 the canary (online boxes first), 1 the share, 2 the rest."""
    ordered = sorted(boxes, key=lambda b: (not online.get(b, False), b))
    out: dict[str, int] = {}
    first, rest = ordered[:canary], sorted(ordered[canary:])
    for box in first:
        out[box] = 0
    if rest:
        n = max(1, math.ceil(len(rest) * share / 100))
        for box in rest[:n]:
            out[box] = 1
        for box in rest[n:]:
            out[box] = 2
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    state: BoxState
    failure: Failure | None = None
    reason: str | None = None


def outcome(
    *,
    version: str,
    state: str,
    sent_boot: str | None,
    sent_at: float,
    now: float,
    confirm_timeout_s: float,
    reply: tuple[bool, str | None] | None,
    status: Mapping[str, Any] | None,
) -> Outcome:
    """Where a box that was sent ``version`` stands now, from the command's reply and the
    box's newest birth (``status``: its stored status document, ``release`` inside)."""
    release = (status or {}).get("release") or {}
    if release.get("version") == version and release.get("state") == "confirmed":
        return Outcome("confirmed")
    new_boot = status is not None and status.get("boot_id") not in (None, sent_boot)
    if (
        new_boot
        and release.get("state") == "rolled_back"
        and release.get("failed_version") == version
    ):
        why = release.get("reason") or "no reason given"
        return Outcome("failed", "rolled_back", f"rolled back by the box: {why}")
    if reply is not None and not reply[0]:
        return Outcome("failed", "refused", f"refused: {reply[1] or 'no reason given'}")
    if (
        new_boot
        and reply is None
        and release.get("version") != version
        and release.get("state") == "confirmed"
    ):  # its install went with the power (or a crash) before the switch: send it again
        return Outcome(
            "waiting",
            None,
            f"interrupted: back on a new boot still running {release.get('version')} without "
            "a reply to its install (a power cut?); sent again",
        )
    if now - sent_at > confirm_timeout_s:
        return Outcome(
            "failed", "timeout", f"not confirmed within {confirm_timeout_s:g} s of the install"
        )
    if reply is not None or state == "installing":
        return Outcome("installing")
    return Outcome("sent")


def runs_confirmed(status: Mapping[str, Any] | None, version: str) -> bool:
    release = (status or {}).get("release") or {}
    return release.get("version") == version and release.get("state") == "confirmed"
