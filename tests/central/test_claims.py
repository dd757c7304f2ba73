"""What central believes of a box's word: the pure rules of ``central/ingest/claims.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central.ingest.claims import (
    LINE_FROM_MAX,
    implausible_drop,
    implausible_line,
    outbox_capacity,
    replayed_seq,
)
from edge.outbox_errors import SeqLineFull
from firmware_protocols.uplink import EventsDropped
from firmware_protocols.uplink.models import MAX_SEQ, SEQ_HEADROOM
from tests.edge.test_outbox_line import filled


def _birth(cap: object) -> str:
    return json.dumps({"health": {"outbox": {"event": {"cap_bytes": cap}}}})


@pytest.mark.parametrize(
    ("status_json", "capacity"),
    [
        pytest.param(None, None, id="no-birth"),
        pytest.param("{not json", None, id="garbage"),
        pytest.param(json.dumps({"state": "offline"}), None, id="no-health"),
        pytest.param(_birth("64"), None, id="string-cap"),
        pytest.param(_birth(True), None, id="bool-cap"),
        pytest.param(_birth(64 * 1024 * 1024), 4 * 1024 * 1024, id="default-64MiB"),
        pytest.param(_birth(0), 0, id="a-lying-zero-cap-refuses-every-drop"),
        pytest.param(_birth(-5), 0, id="negative"),
    ],
)
def test_claims_outbox_capacity_from_the_birth(
    status_json: str | None, capacity: int | None
) -> None:
    assert outbox_capacity(status_json) == capacity


def test_claims_a_drop_fits_in_the_outbox_or_is_refused_with_the_numbers() -> None:
    body = EventsDropped(first_seq=10, last_seq=109, count=100, total=100)
    assert implausible_drop(body, None) is None
    assert implausible_drop(body, 100) is None
    reason = implausible_drop(body, 99)
    assert reason is not None and "10..109 (100 seqs)" in reason and "99 events" in reason
    assert implausible_drop(body, 0) is not None


def test_claims_replayed_seq_names_both_events() -> None:
    reason = replayed_seq(7, "a-held", "b-new")
    assert "seq 7" in reason and "a-held" in reason and "b-new" in reason


def test_claims_a_line_is_believed_only_where_a_real_box_can_renumber_above_it(
    tmp_path: Path,
) -> None:
    """The highest line start central takes leaves a real outbox (here 1,000 events) room to
    renumber above the watermark it sets; a start above it is refused with the numbers. The
    reason for the bound: a watermark at 2^63-1 - 2^40 leaves that outbox no room."""
    assert implausible_line(None) is None and implausible_line(1) is None
    assert implausible_line(LINE_FROM_MAX) is None
    reason = implausible_line(LINE_FROM_MAX + 1)
    assert reason is not None and str(LINE_FROM_MAX + 1) in reason and str(MAX_SEQ) in reason
    box = filled(tmp_path / "o.sqlite", 1000)
    try:
        assert box.move_line_above(LINE_FROM_MAX - 1) > 0
        assert box.line.first == LINE_FROM_MAX
        assert MAX_SEQ - box.last_seq >= SEQ_HEADROOM
    finally:
        box.close()
    stuck = filled(tmp_path / "p.sqlite", 1000)
    try:
        with pytest.raises(SeqLineFull):
            stuck.move_line_above(MAX_SEQ - SEQ_HEADROOM - 1)
    finally:
        stuck.close()
