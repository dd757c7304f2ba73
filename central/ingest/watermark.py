"""The ack watermark: the highest seq below which central holds every event of a box.

Pure arithmetic, so it is tested on its own. ``advance`` walks the stored seqs above the
current watermark in order and stops at the first hole; a seq range the box reported as
dropped (``events_dropped``) counts as held, so the watermark can pass it::

    stored:   1 2 3 4 5 . . 8 9 . 11        dropped: 6..7
    watermark 0 ---------------------> 9    (10 is missing: wait for it)
"""

from __future__ import annotations

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
