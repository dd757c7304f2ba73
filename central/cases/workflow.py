"""The closed loop of a case, as a table (digital city-management practice).

::

    registered --dispatch--> dispatched --handle--> handled --verify--> verified --close--> closed
                             |    ^                    |                   |                 |
                  acknowledge+----+                    +------reopen-------+------reopen-----+
                   (stays dispatched)                                  (back to dispatched)

Time limits per case kind come from the site file's ``[duty]``: a case not acknowledged
by ``ack_due_at`` is escalated once (level 1), a case not closed by ``close_due_at`` again
(level 2). Handling a case that was never acknowledged acknowledges it.
"""

from __future__ import annotations

from central.errors import Conflict

TRANSITIONS: dict[tuple[str, str], str] = {
    ("registered", "dispatch"): "dispatched",
    ("dispatched", "acknowledge"): "dispatched",
    ("dispatched", "handle"): "handled",
    ("handled", "verify"): "verified",
    ("handled", "reopen"): "dispatched",
    ("verified", "close"): "closed",
    ("verified", "reopen"): "dispatched",
    ("closed", "reopen"): "dispatched",
}
OPEN_STATES = frozenset({"registered", "dispatched", "handled", "verified"})
TIMESTAMP = {
    "dispatch": "dispatched_at",
    "acknowledge": "acknowledged_at",
    "handle": "handled_at",
    "verify": "verified_at",
    "close": "closed_at",
}


def actions(state: str) -> list[str]:
    return sorted(action for (current, action) in TRANSITIONS if current == state)


def step(state: str, action: str) -> str:
    if (state, action) not in TRANSITIONS:
        allowed = ", ".join(actions(state)) or "nothing"
        raise Conflict(f"cannot {action} a case that is {state} (allowed: {allowed})")
    return TRANSITIONS[(state, action)]
