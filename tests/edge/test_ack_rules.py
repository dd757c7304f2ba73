"""The box's reading of central's ack against its outbox's seq line (pure rules)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from edge.agents.uplink.ack_rules import Do, judge
from edge.outbox_line import SeqLine
from firmware_protocols.uplink import AckWatermark

TS = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
MINE = SeqLine(id=uuid.UUID(int=2), first=1)
OLD = uuid.UUID(int=1)


def ack(acked: int, line: uuid.UUID | None = None, line_from: int | None = None) -> AckWatermark:
    return AckWatermark(box_id="box-p1", acked_seq=acked, line=line, line_from=line_from, ts=TS)


@pytest.mark.parametrize(
    ("the_ack", "line", "last", "outbox_acked", "box_acked", "expected"),
    [
        # another line's ack at or below this new outbox's last seq: renumber, never delete
        pytest.param(ack(30, OLD, 1), MINE, 40, 0, 0, Do.MOVE_LINE, id="old-line-below-last"),
        pytest.param(ack(30, OLD, 1), MINE, 10, 0, 0, Do.MOVE_LINE, id="old-line-above-last"),
        pytest.param(ack(30, OLD, 1), MINE, 0, 0, 0, Do.MOVE_LINE, id="old-line-empty-box"),
        # the box already moved above it: nothing to delete or move
        pytest.param(ack(30, OLD, 1), SeqLine(MINE.id, 31), 70, 0, 0, Do.NOTED, id="below-line"),
        pytest.param(ack(30, OLD, 1), SeqLine(MINE.id, 31), 70, 0, 30, Do.NOTHING, id="seen"),
        # this box's own id with its former numbering is another line too
        pytest.param(ack(5, MINE.id, 1), SeqLine(MINE.id, 31), 70, 0, 30, Do.NOTHING, id="old-n"),
        pytest.param(ack(40, MINE.id, 1), SeqLine(MINE.id, 31), 70, 0, 30, Do.MOVE_LINE, id="n"),
        # its own line: as ever, and never beyond what it committed
        pytest.param(ack(20, MINE.id, 1), MINE, 40, 0, 0, Do.APPLY, id="own-apply"),
        pytest.param(ack(41, MINE.id, 1), MINE, 40, 0, 0, Do.REFUSE, id="own-forged-new-box"),
        pytest.param(ack(2**62, MINE.id, 1), MINE, 40, 10, 10, Do.REFUSE, id="own-forged"),
        pytest.param(ack(5, MINE.id, 1), MINE, 40, 10, 10, Do.REGRESSED, id="own-regressed"),
        pytest.param(ack(10, MINE.id, 1), MINE, 40, 10, 10, Do.NOTHING, id="own-same"),
        # legacy central (no line): the rules before lines
        pytest.param(ack(20), MINE, 40, 0, 0, Do.APPLY, id="legacy-apply"),
        pytest.param(ack(50), MINE, 40, 0, 0, Do.ADVANCE, id="legacy-advance-never-acked"),
        pytest.param(ack(50), MINE, 40, 3, 3, Do.REFUSE, id="legacy-forged"),
    ],
)
def test_judge(
    the_ack: AckWatermark,
    line: SeqLine,
    last: int,
    outbox_acked: int,
    box_acked: int,
    expected: Do,
) -> None:
    verdict = judge(
        the_ack, line=line, last_seq=last, outbox_acked=outbox_acked, box_acked=box_acked
    )
    assert verdict.do is expected and verdict.acked == the_ack.acked_seq
    if expected in (Do.REFUSE, Do.REGRESSED):
        assert verdict.reason
