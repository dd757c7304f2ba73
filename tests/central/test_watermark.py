"""The ack watermark arithmetic: contiguous seqs, holes, dropped ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.ingest.watermark import advance


@pytest.mark.parametrize(
    ("acked", "seqs", "dropped", "expected"),
    [
        pytest.param(0, [], [], 0, id="nothing"),
        pytest.param(0, [1, 2, 3], [], 3, id="contiguous"),
        pytest.param(0, [2, 3], [], 0, id="first-missing"),
        pytest.param(0, [1, 2, 4], [], 2, id="hole"),
        pytest.param(5, [6, 7], [], 7, id="from-watermark"),
        pytest.param(0, [1, 2, 5, 6], [(3, 4)], 6, id="dropped-fills-hole"),
        pytest.param(0, [], [(1, 10)], 10, id="only-dropped"),
        pytest.param(0, [1, 12], [(2, 10)], 10, id="dropped-then-hole"),
        pytest.param(3, [4], [(1, 2)], 4, id="old-dropped-ignored"),
    ],
)
def test_watermark_advance_cases(
    acked: int, seqs: list[int], dropped: list[tuple[int, int]], expected: int
) -> None:
    """The watermark stops at the first seq that is neither stored nor dropped."""
    assert advance(acked, seqs, dropped) == expected


@given(
    held=st.sets(st.integers(min_value=1, max_value=60)),
    ranges=st.lists(
        st.tuples(st.integers(1, 60), st.integers(0, 5)).map(lambda p: (p[0], p[0] + p[1])),
        max_size=4,
    ),
)
def test_watermark_is_the_longest_settled_prefix(
    held: set[int], ranges: list[tuple[int, int]]
) -> None:
    """advance() equals the brute-force answer: the largest n with 1..n all settled."""
    settled = set(held)
    for first, last in ranges:
        settled.update(range(first, last + 1))
    expected = 0
    while expected + 1 in settled:
        expected += 1
    assert advance(0, sorted(held), ranges) == expected
