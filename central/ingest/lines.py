"""Each box's seq line at central: the numbering its watermark counts, and what to do with
events of another.

Theory of operation
-------------------
A box's outbox file is one seq line: a random id made with the file and ``line_from``, the
first seq it may hold (docs/edge-uplink.md). Central keeps per box, beside the watermark,
the line whose events the watermark counts (``watermarks.line``/``line_from``) and names it
in every ack. Before the batch's events are inserted, each box's events are sorted by line,
in arrival order::

    event names no line (a legacy box)      -> stored as before; the box's line is
                                               forgotten (its acks name none again)
    event of the box's current line         -> stored
    no current line yet (a new box, or one  -> the line is taken; the watermark is raised
      that spoke without lines)                to line_from - 1 if below (the line holds
                                               nothing lower)
    another line, line_from > watermark     -> the box renumbered above the watermark: the
                                               line is taken, the watermark raised to
                                               line_from - 1 (the old line's seqs up to there
                                               are held or never coming: its file is gone)
    another line, line_from <= watermark    -> held back: not stored, no side effects,
                                               counted (``events_refused{other_line}``);
                                               the box is acked with the current line, on
                                               which it renumbers its events above the
                                               watermark and sends them again

So an event of a new outbox is stored once, under the numbering the box keeps; the stale
numbering never is (nothing lost, nothing counted twice). A known limit: seqs of the old
line that central holds above a hole in its watermark are not moved, so the new line's
events at those seqs are refused as replayed (quarantined), not stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, case, select

from central.db import schema as t
from central.db.engine import insert_ignore
from central.ingest.batch import Batch, IngestContext

Line = tuple[str, int]  # the line's id (text) and its first seq


@dataclass
class LineOutcome:
    """What sorting a batch by line left: each box's line (None: legacy), the marks raised
    by taking a line, and the watermark of each box whose events were held back."""

    lines: dict[str, Line | None] = field(default_factory=dict)
    raised: dict[str, int] = field(default_factory=dict)
    held_back: dict[str, int] = field(default_factory=dict)


_wm = t.watermarks.c
_STORED_LINES = select(_wm.box_id, _wm.acked_seq, _wm.line, _wm.line_from).where(
    _wm.box_id.in_(bindparam("boxes", expanding=True))
)  # built once: the writer reads it for every batch


def sort_lines(ctx: IngestContext, conn: Connection, batch: Batch) -> LineOutcome:
    """In the batch's transaction, before the inserts: keep each event of a box's line,
    take a new line where the rules above say so, and hold back the rest."""
    outcome = LineOutcome()
    by_box: dict[str, list[tuple[str, int]]] = {}
    for key in batch.events:
        by_box.setdefault(key[0], []).append(key)
    if not by_box:
        return outcome
    rows = conn.execute(_STORED_LINES, {"boxes": list(by_box)})
    stored: dict[str, tuple[int, Line | None]] = {
        box: (acked, None if line is None else (line, int(line_from)))
        for box, acked, line, line_from in rows
    }
    changes = []
    for box, keys in by_box.items():
        acked, line = stored.get(box, (0, None))
        before, floor = line, acked
        for key in keys:
            event = batch.events[key][0]
            if event.line is None or event.line_from is None:
                line = None  # a legacy box, or one taken back to a release before lines
                continue
            theirs = (str(event.line), event.line_from)
            if theirs == line:
                continue
            if line is None or event.line_from > acked:
                line = theirs
                acked = max(acked, event.line_from - 1)
                continue
            del batch.events[key]
            ctx.stats.events_refused["other_line"] += 1
            outcome.held_back[box] = acked
        outcome.lines[box] = line
        if acked > floor:
            outcome.raised[box] = acked
        if line != before or acked > floor:
            changes.append(
                {
                    "b": box,
                    "m": acked,
                    "l": None if line is None else line[0],
                    "f": None if line is None else line[1],
                    "at": time.time(),
                }
            )
    if changes:
        missing = [c for c in changes if c["b"] not in stored]
        if missing:
            conn.execute(
                insert_ignore(ctx.dialect, t.watermarks, ["box_id"]),
                [{"box_id": c["b"], "acked_seq": 0, "updated_at": c["at"]} for c in missing],
            )
        conn.execute(
            t.watermarks.update()
            .where(_wm.box_id == bindparam("b"))
            .values(
                # Never lower: another process may have moved it meanwhile.
                acked_seq=case(
                    (_wm.acked_seq < bindparam("m"), bindparam("m")), else_=_wm.acked_seq
                ),
                line=bindparam("l"),
                line_from=bindparam("f"),
                updated_at=bindparam("at"),
            ),
            changes,
        )
    return outcome
