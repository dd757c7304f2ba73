"""What the box does with central's ack watermark: a pure decision, tested on its own.

The ack names the seq line whose events central's watermark counts (``line``,
``line_from``); the box compares it with its outbox's line::

    ack without a line (a legacy central)   -> as before lines: apply; renumber past it when
                                               it is above the last seq of a line central
                                               never acked; else refuse if above
    ack for this box's line                 -> apply up to it; refuse if above the last
                                               committed seq (central cannot hold more)
    ack for another line, at or above the   -> renumber this line above it; delete nothing
      first seq of this box's line             (central holds the OLD line's seqs there)
    ack for another line, below it          -> nothing to delete or move

"Another line" is another id or the same id with another first seq (a numbering of this
box's own file that the box has since moved). Nothing in an ack for another line deletes
an event: that was the defect of an ack without a line, which a box with a new outbox took
for its own and so deleted events 1..watermark central never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edge.outbox import Outbox
from edge.outbox_errors import AckBeyondOutbox
from edge.outbox_line import SeqLine
from firmware_protocols.uplink import AckWatermark


class Do(Enum):
    NOTHING = "nothing"  # the watermark the box already has, or older news
    REGRESSED = "regressed"  # central's watermark for this line went back: keep ours
    APPLY = "apply"  # delete up to ``acked``
    ADVANCE = "advance"  # legacy: renumber past ``acked`` (``Outbox.advance_past``), then apply
    MOVE_LINE = "move_line"  # renumber above ``acked`` (``Outbox.move_line_above``), no delete
    NOTED = "noted"  # another line's watermark below this line: take it as the floor
    REFUSE = "refuse"  # beyond anything this line committed: a forged or corrupt ack


@dataclass(frozen=True, slots=True)
class Decision:
    do: Do
    acked: int
    reason: str = ""


def judge(
    ack: AckWatermark, *, line: SeqLine, last_seq: int, outbox_acked: int, box_acked: int
) -> Decision:
    """What to do with ``ack``, given the outbox's line, its last committed seq, the highest
    ack it ever applied and the box's current watermark."""
    acked = ack.acked_seq
    if ack.line is not None and (ack.line, ack.line_from) != (line.id, line.first):
        if acked >= line.first:
            return Decision(Do.MOVE_LINE, acked)
        return Decision(Do.NOTED if acked > box_acked else Do.NOTHING, acked)
    if acked < box_acked:
        why = f"central's watermark went back from {box_acked} to {acked}; keeping ours"
        return Decision(Do.REGRESSED, acked, why)
    if acked == box_acked:
        return Decision(Do.NOTHING, acked)
    if acked <= last_seq:
        return Decision(Do.APPLY, acked)
    beyond = str(AckBeyondOutbox(acked, last_seq))
    if ack.line is not None or outbox_acked > 0:
        # Central acked this line before (or names it): it cannot hold seqs the line never
        # reached. Deleting on it would lose events (issue 14).
        return Decision(Do.REFUSE, acked, beyond)
    # Legacy: a line central never acked (a new or recreated outbox) behind central's
    # watermark: renumber above it before anything new goes out.
    return Decision(Do.ADVANCE, acked)


def renumber(outbox: Outbox, decision: Decision) -> int:
    """Carry out ``ADVANCE`` or ``MOVE_LINE`` on the outbox; return the shift. Raises
    ``SeqLineFull`` (nothing changed) near the top of the seq line."""
    if decision.do is Do.ADVANCE:
        return outbox.advance_past(decision.acked)
    return outbox.move_line_above(decision.acked)
