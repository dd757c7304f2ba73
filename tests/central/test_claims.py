"""What central believes of a box's word: the pure rules of ``central/ingest/claims.py``."""

from __future__ import annotations

import json

import pytest

from central.ingest.claims import implausible_drop, outbox_capacity, replayed_seq
from firmware_protocols.uplink import EventsDropped


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
