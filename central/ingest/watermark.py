"""The ack watermark: the highest seq below which central holds every event of a box.

Pure arithmetic, so it is tested on its own. ``advance`` walks the stored seqs above the
current watermark in order and stops at the first hole; a seq range the box reported as
dropped (``events_dropped``) counts as held, so the watermark can pass it::

    stored:   1 2 3 4 5 . . 8 9 . 11        dropped: 6..7
    watermark 0 ---------------------> 9    (10 is missing: wait for it)
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


def advance(acked: int, seqs: Iterable[int], dropped: Iterable[tuple[int, int]] = ()) -> int:
    """The new watermark, given the current one, stored seqs above it (ascending) and
    dropped ranges ``(first, last)``, inclusive (ascending by first)."""
    ranges = sorted(dropped)
    index = 0

    def skip_dropped(mark: int) -> int:
        nonlocal index
        while index < len(ranges):
            first, last = ranges[index]
            if last <= mark:
                index += 1
            elif first <= mark + 1:
                mark = last
                index += 1
            else:
                break
        return mark

    acked = skip_dropped(acked)
    for seq in seqs:
        if seq <= acked:
            continue
        if seq != acked + 1:
            break
        acked = skip_dropped(seq)
    return acked


class Frontier:
    """One box's watermark moved by what is stored, piece by piece, in any order.

    Holds the mark and what is known to be held above it: stored seqs (a min-heap) and
    dropped ranges (a min-heap by first seq). ``add`` costs O(log n) per seq or range added
    and per one passed, never a read of what was stored before, and gives what ``advance``
    gives over everything added at once. ``raise_to`` takes a mark found elsewhere (the
    store, another process). What is above a hole waits in the heaps until the hole fills.
    """

    def __init__(self, acked: int = 0) -> None:
        self.acked = acked
        self._seqs: list[int] = []
        self._ranges: list[tuple[int, int]] = []

    def add(self, seqs: Iterable[int], dropped: Iterable[tuple[int, int]] = ()) -> int:
        acked = self.acked
        for seq in seqs:
            if seq > acked:
                heapq.heappush(self._seqs, seq)
        for first, last in dropped:
            if last > acked:
                heapq.heappush(self._ranges, (first, last))
        return self._settle()

    def raise_to(self, mark: int) -> int:
        if mark > self.acked:
            self.acked = mark
        return self._settle()

    def _settle(self) -> int:
        acked, seqs, ranges = self.acked, self._seqs, self._ranges
        while True:
            if seqs and seqs[0] <= acked + 1:
                acked = max(acked, heapq.heappop(seqs))
            elif ranges and ranges[0][0] <= acked + 1:
                acked = max(acked, heapq.heappop(ranges)[1])
            else:
                break
        self.acked = acked
        return acked

    @property
    def waiting(self) -> int | None:
        """The lowest seq held above the hole at ``acked + 1`` (None: nothing waits)."""
        lows = [h[0] for h in (self._seqs,) if h] + [r[0][0] for r in (self._ranges,) if r]
        return min(lows) if lows else None

    @property
    def highest(self) -> int:
        """The highest seq known held (stored or dropped), at least the mark."""
        return max([self.acked, *self._seqs, *(last for _, last in self._ranges)])

    def __len__(self) -> int:
        """How many seqs and ranges wait above a hole."""
        return len(self._seqs) + len(self._ranges)

    def clear_waiting(self) -> None:
        """Forget what waits (the store still holds it; see ``MarkBook``)."""
        self._seqs.clear()
        self._ranges.clear()
