"""Ingest dispatches through tables: every message and event type is handled on purpose.

A new payload or event body added to the uplink protocol must be given a handler (or be
named here as deliberately stored only), so it can never be dropped silently by a table
that does not know it.
"""

from __future__ import annotations

import typing

from central.ingest.decode import FILE_BY_PAYLOAD
from central.ingest.events import APPLY_BY_BODY
from central.ingest.states import APPLY_BY_STATE
from firmware_protocols.uplink import (
    AckWatermark,
    BayState,
    CentralStatus,
    LotState,
    SignState,
    ZoneState,
)
from firmware_protocols.uplink.codec import PAYLOAD_MODELS
from firmware_protocols.uplink.models import (
    Command,
    EventBody,
    SensorFault,
    SensorRecovered,
    SignFault,
    SignRecovered,
    ZoneTransition,
)

# central's own topics (it publishes acks and commands, never ingests them); central
# statuses are read before the table, from any site.
NOT_FILED = {AckWatermark, Command, CentralStatus}
# Events stored (and acked) with no side effect at central.
STORED_ONLY = {SensorFault, SensorRecovered, SignFault, SignRecovered, ZoneTransition}


def test_ingest_table_files_every_payload_central_receives() -> None:
    payloads = set(PAYLOAD_MODELS.values())
    assert set(FILE_BY_PAYLOAD) == payloads - NOT_FILED
    assert set(FILE_BY_PAYLOAD).isdisjoint(NOT_FILED)


def test_ingest_state_table_covers_every_state_document() -> None:
    states = {BayState, LotState, ZoneState, SignState}
    assert set(APPLY_BY_STATE) == states
    assert all(FILE_BY_PAYLOAD[kind] is FILE_BY_PAYLOAD[BayState] for kind in states)


def test_ingest_event_table_covers_every_event_body() -> None:
    union = typing.get_args(EventBody)[0]  # Annotated[Union[...], Field(...)]
    bodies = set(typing.get_args(union))
    assert bodies, "no event bodies found"
    assert set(APPLY_BY_BODY) | STORED_ONLY == bodies
    assert set(APPLY_BY_BODY).isdisjoint(STORED_ONLY)
