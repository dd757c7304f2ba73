"""The review workflow of ledger entries, as a table.

::

    violation:  pending_review --confirm--> confirmed --notify--> notified --close--> closed
                      |
                      +--void (reason)--> voided
    tow order:  ordered --tow--> towed --release--> released
                   |
                   +--void (reason)--> voided        (the vehicle left before the tow)

A step is a new ledger entry (kind ``status``) whose ``ref_seq`` names the first entry;
the first entry is never changed.
"""

from __future__ import annotations

from central.errors import Conflict, Invalid

TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending_review", "confirm"): "confirmed",
    ("pending_review", "void"): "voided",
    ("confirmed", "notify"): "notified",
    ("notified", "close"): "closed",
    ("ordered", "tow"): "towed",
    ("ordered", "void"): "voided",
    ("towed", "release"): "released",
}
NEEDS_REASON = frozenset({"void"})
FIRST_STATUS = {"violation": "pending_review", "tow": "ordered"}


def actions(status: str) -> list[str]:
    """What may be done to an entry in ``status``."""
    return sorted(action for (state, action) in TRANSITIONS if state == status)


def step(status: str, action: str, reason: str | None) -> str:
    """The status after ``action``; Conflict when the table has no such step."""
    if (status, action) not in TRANSITIONS:
        allowed = ", ".join(actions(status)) or "nothing"
        raise Conflict(f"cannot {action} an entry that is {status} (allowed: {allowed})")
    if action in NEEDS_REASON and not (reason and reason.strip()):
        raise Invalid(f"{action} needs a reason", field="reason")
    return TRANSITIONS[(status, action)]
