"""Each box's ack watermark, kept in memory and moved by the seqs each batch commits.

Theory of operation
-------------------
The walk (``walk.py``) reads a box's stored seqs above its mark, a page at a time, and
stops at the first hole. Run after every batch and again by a sweep every half second for
every recently touched box, it cost three quarters of the ingest writer's CPU at a
county's rate (issue 17). The book instead keeps, per box, a :class:`Frontier`: the mark
and what is known held above it. Inside each batch's transaction, after the inserts, the
batch's stored seqs and dropped ranges are added and the mark moves in O(new events),
with no read of ``events`` at all while a box sends in order. ::

    batch: insert events --> seqs + ranges --> Frontier.add --> mark --> UPDATE watermarks
                                                 ^                        (only if moved)
          first time a box is seen: the walk ----+ (the repair after a restart)

The store may hold seqs the frontier never saw: those stored before this process started
(``unknown_to``: the box's highest seq when the walk repaired it) and, when the ingest is
shared, those another process stores. Only then the book looks: one probe (is the seq
just above the mark, or a range reaching it, stored?) and, only if so, the hole: seqs and
ranges between the mark and the lowest seq known above it, a page at a time. So the
process that commits last finds what the others committed before it. With a shared
ingest it also takes the stored mark (another process may have moved it), and ``sweep``
settles boxes left waiting at a hole a moment later: two transactions that commit at the
same time cannot see each other's rows, and the sweep runs after both. A box whose
frontier holds more than ``max_waiting`` seqs above a hole forgets them and reads them
back from the store when the hole fills, so memory stays bounded.

The book is changed inside the transaction; if the transaction fails the writer forgets
the batch's boxes and the next batch repairs them with a walk.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import BigInteger, Connection, String, bindparam, func, select, text

from central.db import schema as t
from central.ingest.walk import RANGE_CHUNK, WALK_CHUNK, walk
from central.ingest.watermark import Frontier

MAX_WAITING = 50_000
NO_UPPER = 2**62  # the hole's upper bound when nothing is known above it

# Built once: the writer runs them for every box of every batch when the ingest is shared.
_ev, _dr, _wm = t.events.c, t.dropped_ranges.c, t.watermarks.c
_BOX = bindparam("box", type_=String)
_ACKED, _UPPER = bindparam("acked", type_=BigInteger), bindparam("upper", type_=BigInteger)
_STORED_MARKS = select(_wm.box_id, _wm.acked_seq).where(
    _wm.box_id.in_(bindparam("boxes", expanding=True))
)
_STORED_RANGES = select(_dr.first_seq, _dr.last_seq).where(
    _dr.box_id == _BOX, _dr.first_seq.in_(bindparam("firsts", expanding=True))
)
# A range counts only below a stored seq of the box, as in the walk.
_TOP = select(func.max(_ev.seq)).where(_ev.box_id == _BOX).scalar_subquery()
_PROBE = (
    select(_ev.seq)
    .where(_ev.box_id == _BOX, _ev.seq == _ACKED + 1)
    .union_all(
        select(_dr.first_seq).where(
            _dr.box_id == _BOX,
            _dr.first_seq <= _ACKED + 1,
            _dr.last_seq > _ACKED,
            _dr.last_seq < _TOP,
        )
    )
    .limit(1)
)
_HOLE_SEQS = (
    select(_ev.seq)
    .where(_ev.box_id == _BOX, _ev.seq > _ACKED, _ev.seq < _UPPER)
    .order_by(_ev.seq)
    .limit(WALK_CHUNK)
)
_HOLE_RANGES = (
    select(_dr.first_seq, _dr.last_seq)
    .where(_dr.box_id == _BOX, _dr.last_seq > _ACKED, _dr.last_seq < _TOP, _dr.first_seq < _UPPER)
    .order_by(_dr.first_seq)
    .limit(RANGE_CHUNK)
)

# PostgreSQL: the same three reads for every box of a batch at once (``MarkBook._fill``),
# each box's through its own index range: a LATERAL subquery per box that the planner may
# not flatten into a join (its LIMIT; see ``events._HELD_ALL`` for what a join cost).
_BOXES_ACKED = "unnest(CAST(:boxes AS text[]), CAST(:acked AS bigint[]))"
_PROBE_ALL = text(
    f"SELECT h.box FROM {_BOXES_ACKED} AS h(box, acked) CROSS JOIN LATERAL ("
    "SELECT 1 FROM events e WHERE e.box_id = h.box AND e.seq = h.acked + 1 "
    "UNION ALL SELECT 1 FROM dropped_ranges d WHERE d.box_id = h.box "
    "AND d.first_seq <= h.acked + 1 AND d.last_seq > h.acked "
    "AND d.last_seq < (SELECT max(e.seq) FROM events e WHERE e.box_id = h.box) "
    "LIMIT 1) AS p"
)
_HOLES = (
    "unnest(CAST(:boxes AS text[]), CAST(:acked AS bigint[]), CAST(:upper AS bigint[])) "
    "AS h(box, acked, upper)"
)
_HOLE_SEQS_ALL = text(
    f"SELECT h.box, e.seq FROM {_HOLES} CROSS JOIN LATERAL (SELECT seq FROM events "
    "WHERE box_id = h.box AND seq > h.acked AND seq < h.upper ORDER BY seq LIMIT :seqs) AS e"
)
_HOLE_RANGES_ALL = text(
    f"SELECT h.box, d.first_seq, d.last_seq FROM {_HOLES} CROSS JOIN LATERAL "
    "(SELECT first_seq, last_seq FROM dropped_ranges WHERE box_id = h.box "
    "AND last_seq > h.acked AND first_seq < h.upper "
    "AND last_seq < (SELECT max(e.seq) FROM events e WHERE e.box_id = h.box) "
    "ORDER BY first_seq LIMIT :ranges) AS d"
)


@dataclass
class BoxMark:
    frontier: Frontier
    unknown_to: int  # the store may hold seqs up to here that the frontier never saw
    written: int  # the mark as last stored by this book


class MarkBook:
    """The watermarks of the boxes one writer has seen; ``shared``: other writers store too."""

    def __init__(self, dialect: str, *, shared: bool, max_waiting: int = MAX_WAITING) -> None:
        self.dialect = dialect
        self.shared = shared
        self.max_waiting = max_waiting
        self._boxes: dict[str, BoxMark] = {}
        wm = t.watermarks.c
        self._update = (
            t.watermarks.update()
            .where(wm.box_id == bindparam("b"), wm.acked_seq < bindparam("m"))
            .values(acked_seq=bindparam("m"), updated_at=bindparam("at"))
        )

    def forget(self, boxes: Iterable[str]) -> None:
        """Drop what is known of these boxes (their transaction failed): walk them again."""
        for box in boxes:
            self._boxes.pop(box, None)

    def move(
        self,
        conn: Connection,
        stored: Mapping[str, Iterable[int]],
        dropped_firsts: Mapping[str, Iterable[int]] | None = None,
    ) -> dict[str, int]:
        """In a batch's transaction, after its inserts: add each box's stored seqs (new and
        repeats) and the first seqs of the dropped ranges its events reported; store and
        return each box's mark."""
        entries: dict[str, BoxMark] = {}
        for box, seqs in stored.items():
            entry = self._boxes.get(box)
            if entry is None:
                entry = self._boxes[box] = self._repair(conn, box)
            firsts = list((dropped_firsts or {}).get(box, ()))
            entry.frontier.add(seqs, self._stored_ranges(conn, box, firsts) if firsts else ())
            entries[box] = entry
        return self._settle(conn, entries)

    def gaps(self, boxes: Iterable[str]) -> dict[str, int]:
        """For each of these boxes the book knows, how many seqs are missing between its
        mark and the lowest seq held above it (0: none waits above the mark). A box whose
        waiting seqs were forgotten (``max_waiting``) is left out: its gap is not known."""
        found: dict[str, int] = {}
        for box in boxes:
            entry = self._boxes.get(box)
            if entry is None:
                continue
            waiting = entry.frontier.waiting
            if waiting is not None:
                found[box] = waiting - entry.frontier.acked - 1
            elif entry.unknown_to <= entry.frontier.acked:
                found[box] = 0
        return found

    def raise_to(self, box: str, mark: int) -> None:
        """The box's watermark was raised to ``mark`` in the store (it took a seq line that
        starts above it): a box the book knows moves there too; one it does not is
        repaired from the store when next seen."""
        entry = self._boxes.get(box)
        if entry is not None:
            entry.frontier.raise_to(mark)
            entry.written = max(entry.written, mark)

    def sweepable(self, boxes: Iterable[str]) -> list[str]:
        """Of these boxes, those a sweep may move: any this book knows, if shared."""
        if not self.shared:
            return []
        return [b for b in boxes if b in self._boxes]

    def sweep(self, conn: Connection, boxes: Iterable[str]) -> dict[str, int]:
        """A moment after the batches: take the stored marks (one read for all the boxes;
        another process may have moved them past what this one published) and settle the
        boxes left waiting at a hole another process may have filled since."""
        entries = {box: self._boxes[box] for box in self.sweepable(boxes)}
        return self._settle(conn, entries, holes_only=True) if entries else {}

    # --- inside -------------------------------------------------------------------------

    def _repair(self, conn: Connection, box: str) -> BoxMark:
        mark = walk(conn, self.dialect, box)
        top = conn.execute(select(func.max(t.events.c.seq)).where(t.events.c.box_id == box))
        highest = top.scalar() or 0
        return BoxMark(frontier=Frontier(mark), unknown_to=max(mark, highest), written=mark)

    def _stored_ranges(
        self, conn: Connection, box: str, firsts: list[int]
    ) -> list[tuple[int, int]]:
        # What the store holds under those first seqs (the first report of a range wins).
        rows = conn.execute(_STORED_RANGES, {"box": box, "firsts": firsts})
        return [(first, last) for first, last in rows]

    def _settle(
        self, conn: Connection, entries: dict[str, BoxMark], *, holes_only: bool = False
    ) -> dict[str, int]:
        if self.shared:
            rows = conn.execute(_STORED_MARKS, {"boxes": list(entries)})
            for box, acked in rows:
                entries[box].frontier.raise_to(acked)
        for entry in entries.values():
            frontier = entry.frontier
            if len(frontier) > self.max_waiting:
                entry.unknown_to = max(entry.unknown_to, frontier.highest)
                frontier.clear_waiting()
        unsure = {
            box: entry
            for box, entry in entries.items()
            if self._unsure(entry) and not (holes_only and entry.frontier.waiting is None)
        }
        if unsure:
            self._fill(conn, unsure)
        now = time.time()
        moved = [
            {"b": box, "m": entry.frontier.acked, "at": now}
            for box, entry in entries.items()
            if entry.frontier.acked > entry.written
        ]
        if moved:
            conn.execute(self._update, moved)
            for row in moved:
                entries[row["b"]].written = row["m"]
        return {box: entry.frontier.acked for box, entry in entries.items()}

    def _unsure(self, entry: BoxMark) -> bool:
        """Whether the store may hold seqs above the mark the frontier never saw."""
        return self.shared or entry.frontier.acked < entry.unknown_to

    def _fill(self, conn: Connection, entries: dict[str, BoxMark]) -> None:
        """Read each box's hole above its mark from the store, until its mark stops moving.

        First one probe: is the seq just above the mark, or a range reaching it, stored?
        Only for those boxes the hole (up to the lowest seq known above it) is read, a page
        at a time. On PostgreSQL each read is one statement for all the boxes (with a
        shared ingest each batch probes every box it holds), elsewhere one per box.
        """
        todo = entries
        while todo:
            found = self._probe(conn, {box: e.frontier.acked for box, e in todo.items()})
            if not found:
                return
            holes = {box: (todo[box].frontier.acked, self._upper(todo[box])) for box in found}
            seqs, ranges = self._read_holes(conn, holes)
            moved: dict[str, BoxMark] = {}
            for box, (before, _) in holes.items():
                entry = todo[box]
                entry.frontier.add(seqs[box], ranges[box])
                if entry.frontier.acked != before and self._unsure(entry):
                    moved[box] = entry
            todo = moved

    def _probe(self, conn: Connection, acked: dict[str, int]) -> list[str]:
        """The boxes whose seq just above their mark is stored, or a range reaching it."""
        if self.dialect == "postgresql":
            params = {"boxes": list(acked), "acked": list(acked.values())}
            return list(conn.execute(_PROBE_ALL, params).scalars())
        return [
            box
            for box, mark in acked.items()
            if conn.execute(_PROBE, {"box": box, "acked": mark}).first() is not None
        ]

    def _read_holes(
        self, conn: Connection, holes: dict[str, tuple[int, int]]
    ) -> tuple[dict[str, list[int]], dict[str, list[tuple[int, int]]]]:
        """Per box, the stored seqs and ranges in its hole ``(acked, upper)``: a page each."""
        seqs: dict[str, list[int]] = {box: [] for box in holes}
        ranges: dict[str, list[tuple[int, int]]] = {box: [] for box in holes}
        if self.dialect == "postgresql":
            params = {
                "boxes": list(holes),
                "acked": [hole[0] for hole in holes.values()],
                "upper": [hole[1] for hole in holes.values()],
                "seqs": WALK_CHUNK,
                "ranges": RANGE_CHUNK,
            }
            for box, seq in conn.execute(_HOLE_SEQS_ALL, params):
                seqs[box].append(seq)
            for box, first, last in conn.execute(_HOLE_RANGES_ALL, params):
                ranges[box].append((first, last))
            return seqs, ranges
        for box, (acked, upper) in holes.items():
            hole = {"box": box, "acked": acked, "upper": upper}
            seqs[box].extend(conn.execute(_HOLE_SEQS, hole).scalars())
            ranges[box].extend((first, last) for first, last in conn.execute(_HOLE_RANGES, hole))
        return seqs, ranges

    @staticmethod
    def _upper(entry: BoxMark) -> int:
        """The hole's upper bound: the lowest seq known above it, or past what the store
        may hold that the frontier never saw."""
        frontier = entry.frontier
        bounds = [NO_UPPER] if frontier.waiting is None else [frontier.waiting]
        if frontier.acked < entry.unknown_to:
            bounds.append(entry.unknown_to + 1)
        return min(bounds)
