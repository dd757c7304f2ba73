"""Uplink v1 payloads: round trips through the codec and refusal of bad payloads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    PAYLOAD_MODELS,
    SCHEMA_FILES,
    AckWatermark,
    AlertRaised,
    AlertResolved,
    BayChanged,
    BayState,
    BoxStatus,
    CentralStatus,
    CloseBay,
    Command,
    CommandName,
    CommandReply,
    Event,
    EventsDropped,
    LotState,
    OpenBay,
    Rebirth,
    SensorFault,
    SensorRecovered,
    SignFault,
    SignOverride,
    SignRecovered,
    SignState,
    TopicKind,
    Topics,
    ZoneScheduleCommand,
    ZoneState,
    ZoneTransition,
    decode_message,
    decode_payload,
    encode_payload,
)
from firmware_protocols.uplink import models as m

TS = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
BOOT = uuid.UUID("0b7e1f0c-5d2a-4c3e-9a51-3f6c2d8e4b17")
T = Topics("xigang", "box-p1")


def health() -> m.HealthSummary:
    return m.HealthSummary(
        outbox=m.OutboxHealth(
            state=m.LaneHealth(depth=0, bytes=0, cap_bytes=1_000_000),
            event=m.LaneHealth(depth=12, bytes=4_200, cap_bytes=50_000_000),
            oldest_event_age_s=3.5,
        ),
        serial_lines=(m.SerialLineHealth(line="conc-1", up=True, frames=1200, crc_errors=2),),
        sign_buses=(
            m.SignBusHealth(
                bus="rs485-1", units=(m.SignUnitHealth(unit=1, up=True, requests=400),)
            ),
        ),
        sensors=m.SensorsHealth(total=150, silent=1, low_battery=3),
    )


def birth() -> BoxStatus:
    return BoxStatus(
        box_id="box-p1",
        state=m.Online.ONLINE,
        boot_id=BOOT,
        ts=TS,
        software_version="0.1.0",
        config_hash="sha256:9f2c",
        sensor_count=150,
        clock=m.ClockStatus(synchronised=True, offset_s=0.004, source="ntp"),
        zone_schedule_version=7,
        health=health(),
    )


def will() -> BoxStatus:
    return BoxStatus(
        box_id="box-p1",
        state=m.Online.OFFLINE,
        boot_id=BOOT,
        ts=TS,
        reason=m.OfflineReason.CONNECTION_LOST,
    )


def event(body: Any, seq: int = 4711) -> Event:
    return Event(
        box_id="box-p1",
        boot_id=BOOT,
        seq=seq,
        event_id=uuid.UUID(int=seq),
        ts=TS,
        historical=False,
        body=body,
    )


WINDOW = m.Window(start=TS, end=TS + timedelta(hours=3))

EVENT_BODIES: list[Any] = [
    BayChanged(
        bay_id="P1-017",
        lot_id="P1",
        from_state=m.BayOccupancy.FREE,
        to_state=m.BayOccupancy.OCCUPIED,
        sensor_id="A1B2C3",
        sensor_ts=TS,
    ),
    SensorFault(sensor_id="A1B2C3", bay_id="P1-017", fault=m.SensorFaultType.SILENT, last_seen=TS),
    SensorRecovered(sensor_id="A1B2C3", fault=m.SensorFaultType.SILENT),
    SignFault(sign_id="P1-entry", bus="rs485-1", unit=1, reason="timeout", failures=3),
    SignRecovered(sign_id="P1-entry", bus="rs485-1", unit=1, down_since=TS),
    ZoneTransition(
        zone_id="S3",
        from_state=m.ZoneOpenState.CLOSED,
        to_state=m.ZoneOpenState.OPEN,
        window=WINDOW,
        schedule_version=7,
    ),
    AlertRaised(
        alert_id="a-S3-0001",
        alert_type=m.AlertType.ZONE_OVERSTAY,
        severity=m.Severity.WARNING,
        step=1,
        zone_id="S3",
        since=TS,
        message="stall still occupied 10 min after the window closed",
    ),
    AlertResolved(
        alert_id="a-S3-0001", alert_type=m.AlertType.ZONE_OVERSTAY, zone_id="S3", since=TS
    ),
    EventsDropped(first_seq=1, last_seq=5, count=5, total=5),  # reported at a later seq
]

COMMAND_BODIES: list[Any] = [
    Rebirth(),
    SignOverride(
        sign_id="P1-entry",
        display=m.SignDisplay(mode=m.SignMode.TEXT, text="满 FULL", colour=m.SignColour.RED),
        until=TS + timedelta(hours=1),
    ),
    SignOverride(sign_id="P1-entry", display=None),
    CloseBay(bay_id="P1-017", reason="resurfacing"),
    OpenBay(bay_id="P1-017"),
    ZoneScheduleCommand(
        schedule=m.ScheduleDocument(
            version=8,
            effective_from=TS,
            zones=(
                m.ZoneSchedule(
                    zone_id="S3",
                    zone_class=m.ZoneClass.REGULATED,
                    grace_s=600,
                    weekly=(
                        m.WeeklyWindow(
                            days=(m.Weekday.SAT, m.Weekday.SUN), start=time(6), end=time(9)
                        ),
                        m.WeeklyWindow(days=(m.Weekday.MON,), start=time(18), end=time(1)),
                    ),
                    overrides=(m.DateOverride(date=date(2025, 5, 1), note="holiday"),),
                ),
                m.ZoneSchedule(zone_id="R1", zone_class=m.ZoneClass.PROHIBITED),
            ),
        )
    ),
]


def command(body: Any) -> Command:
    return Command(
        command_id=uuid.UUID(int=99), issued_at=TS, expires_at=TS + timedelta(minutes=5), body=body
    )


SAMPLES: list[tuple[str, BaseModel]] = [
    (T.status, birth()),
    (T.status, will()),
    (
        T.bay("P1-017"),
        BayState(
            bay_id="P1-017",
            lot_id="P1",
            state=m.BayOccupancy.OCCUPIED,
            since=TS,
            sensor=m.SensorInfo(
                sensor_id="A1B2C3",
                battery_mv=3580,
                temperature_c=12.5,
                rssi_dbm=-97.0,
                snr_db=7.5,
                last_seen=TS,
                flags=(m.SensorFlag.LOW_BATTERY,),
            ),
            ts=TS,
        ),
    ),
    (
        T.lot("P1"),
        LotState(
            lot_id="P1",
            capacity=150,
            free=37,
            occupied=110,
            unknown=2,
            closed=1,
            status=m.LotStatus.SPACES_AVAILABLE,
            trend=m.Trend.FILLING,
            ts=TS,
        ),
    ),
    (
        T.zone("S3"),
        ZoneState(
            zone_id="S3",
            zone_class=m.ZoneClass.REGULATED,
            state=m.ZoneOpenState.OPEN,
            window=WINDOW,
            next_transition=WINDOW.end,
            occupied=4,
            schedule_version=7,
            ts=TS,
        ),
    ),
    (
        T.sign("P1-entry"),
        SignState(
            sign_id="P1-entry",
            bus="rs485-1",
            unit=1,
            profile="parkgrid-guidance-v1",
            display=m.SignDisplay(
                mode=m.SignMode.COUNT, count=37, colour=m.SignColour.GREEN, arrow=m.SignArrow.LEFT
            ),
            up=True,
            last_verified=TS,
            ts=TS,
        ),
    ),
    *[(T.event, event(body, seq=i + 1)) for i, body in enumerate(EVENT_BODIES)],
    (T.ack, AckWatermark(box_id="box-p1", acked_seq=4700, ts=TS)),
    *[(T.cmd(body.command), command(body)) for body in COMMAND_BODIES],
    (
        T.reply("close-bay"),
        CommandReply(command_id=uuid.UUID(int=99), command=CommandName.CLOSE_BAY, ok=True, ts=TS),
    ),
    (
        T.reply("rebirth"),
        CommandReply(
            command_id=uuid.UUID(int=98),
            command=CommandName.REBIRTH,
            ok=False,
            error="expired",
            ts=TS,
        ),
    ),
    (T.central_status, CentralStatus(state=m.Online.ONLINE, instance="central-1", ts=TS)),
]


def sample_id(sample: tuple[str, BaseModel]) -> str:
    _, payload = sample
    body = getattr(payload, "body", None)
    return type(payload).__name__ + ("-" + type(body).__name__ if body is not None else "")


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample_id(s) for s in SAMPLES])
def test_uplink_payload_round_trip(sample: tuple[str, BaseModel]) -> None:
    """Every payload survives encode -> decode_message unchanged and is compact UTF-8 JSON."""
    topic, payload = sample
    data = encode_payload(payload)
    assert b"\n" not in data and b": " not in data
    message = decode_message(topic, data)
    assert message.payload == payload
    assert message.topic.topic() == topic
    assert json.loads(data)["v"] == 1


def test_uplink_every_kind_and_model_has_a_sample() -> None:
    """The samples cover every topic kind, event kind and command kind."""
    kinds = {decode_message(t, encode_payload(p)).topic.kind for t, p in SAMPLES}
    assert kinds == set(TopicKind)
    assert set(PAYLOAD_MODELS.values()) == set(SCHEMA_FILES)
    event_kinds = {b.kind for b in EVENT_BODIES}
    assert event_kinds == {
        t.model_fields["kind"].default
        for t in m.EventBody.__args__[0].__args__  # type: ignore[attr-defined]
    }


def test_uplink_every_field_is_documented() -> None:
    """Each field of each model carries a description (it lands in the JSON Schema)."""
    undocumented = [
        f"{cls.__name__}.{name}"
        for cls in vars(m).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == m.__name__
        for name, info in cls.model_fields.items()
        if not info.description
    ]
    assert undocumented == []


def test_uplink_models_are_frozen() -> None:
    """Payloads are values: assigning a field fails."""
    lot = SAMPLES[3][1]
    with pytest.raises(ValueError, match="frozen"):
        lot.free = 3  # type: ignore[attr-defined]


def test_event_kind_property_is_body_kind() -> None:
    """Event.kind reads the body's discriminator."""
    assert event(EVENT_BODIES[6]).kind == "alert_raised"


def lot_doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(encode_payload(SAMPLES[3][1]))
    doc.update(changes)
    return doc


def event_doc(**changes: Any) -> dict[str, Any]:
    doc = json.loads(encode_payload(event(EVENT_BODIES[0])))
    doc.update(changes)
    return doc


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("kind", "data", "reason"),
    [
        pytest.param(TopicKind.LOT, b"", "Invalid JSON", id="empty"),
        pytest.param(TopicKind.LOT, b"{not json", "Invalid JSON", id="not-json"),
        pytest.param(TopicKind.LOT, b"[1, 2]", "should be an object", id="json-array"),
        pytest.param(TopicKind.LOT, b"\xff\xfe", "Invalid JSON", id="not-utf8"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(free="many")), "free:", id="wrong-type"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(colour="red")), "colour: Extra", id="extra"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(v=2)), "v: Input should be 1", id="v2"),
        pytest.param(
            TopicKind.LOT,
            as_bytes({k: v for k, v in lot_doc().items() if k != "v"}),
            "missing protocol version",
            id="no-version",
        ),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(free=36)), "capacity is 150", id="lot-sum"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(free=-1)), "free:", id="negative-count"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(status="Full")), "status:", id="status-case"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(ts="2025-03-01T08:00:00")), "ts:", id="naive"),
        pytest.param(TopicKind.LOT, as_bytes(lot_doc(lot_id="P/1")), "lot_id:", id="bad-lot-id"),
        pytest.param(TopicKind.EVENT, as_bytes(event_doc(seq=0)), "seq:", id="seq-zero"),
        pytest.param(TopicKind.EVENT, as_bytes(event_doc(seq=-5)), "seq:", id="seq-negative"),
        pytest.param(TopicKind.EVENT, as_bytes(event_doc(seq=2**63)), "seq:", id="seq-too-big"),
        pytest.param(TopicKind.EVENT, as_bytes(event_doc(seq="7")), "seq:", id="seq-string"),
        pytest.param(TopicKind.EVENT, as_bytes(event_doc(event_id="x")), "event_id:", id="uuid"),
        pytest.param(
            TopicKind.EVENT, as_bytes(event_doc(body={"kind": "party"})), "body:", id="kind"
        ),
        pytest.param(
            TopicKind.EVENT,
            as_bytes(event_doc(box_id="_central")),
            "box_id:",
            id="reserved-box-id",
        ),
        pytest.param(
            TopicKind.EVENT,
            as_bytes(event_doc(kind="bay_changed")),
            "kind: Extra",
            id="kind-in-envelope",
        ),
        pytest.param(
            TopicKind.STATUS,
            encode_payload(will()).replace(b'"offline"', b'"online"'),
            "an online status needs",
            id="birth-incomplete",
        ),
        pytest.param(
            TopicKind.REPLY,
            encode_payload(SAMPLES[-2][1]).replace(b'"error":"expired"', b'"error":null'),
            "error must be set",
            id="reply-failed-without-error",
        ),
    ],
)
def test_decode_payload_bad_raises(kind: TopicKind, data: bytes, reason: str) -> None:
    """Bad payloads raise DecodeError (fmt uplink-v1) whose reason says what is wrong."""
    with pytest.raises(DecodeError, match=reason) as info:
        decode_payload(kind, data)
    assert info.value.fmt == "uplink-v1"
    assert info.value.data == data
    assert info.value.reason.startswith("invalid ")


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        pytest.param(
            lambda: m.SignDisplay(mode=m.SignMode.COUNT), "mode count needs count", id="count"
        ),
        pytest.param(
            lambda: SignOverride(sign_id="s", display=m.SignDisplay(mode=m.SignMode.BLANK)),
            "needs an until",
            id="override-forever",
        ),
        pytest.param(lambda: m.Window(start=TS, end=TS), "end after", id="empty-window"),
        pytest.param(
            lambda: EventsDropped(first_seq=5, last_seq=4, count=0, total=0), "last_seq", id="drop"
        ),
        pytest.param(
            lambda: event(EventsDropped(first_seq=1, last_seq=2**63 - 2, count=0, total=0), 5),
            "below the event's own seq 5",
            id="drop-beyond-own-seq",
        ),
        pytest.param(
            lambda: event(EventsDropped(first_seq=3, last_seq=7, count=5, total=5), 7),
            "below the event's own seq 7",
            id="drop-includes-own-seq",
        ),
        pytest.param(
            lambda: BayState(bay_id="b", state=m.BayOccupancy.FREE, since=TS, ts=TS),
            "exactly one",
            id="nolot",
        ),
    ],
)
def test_uplink_model_invariants_refused(build: Any, reason: str) -> None:
    """Cross-field rules hold at construction as well as on decode."""
    with pytest.raises(ValueError, match=reason):
        build()


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        pytest.param(T.bay("P1-018"), SAMPLES[2][1], "bay_id", id="bay"),
        pytest.param(T.lot("P2"), SAMPLES[3][1], "lot_id", id="lot"),
        pytest.param(T.zone("S4"), SAMPLES[4][1], "zone_id", id="zone"),
        pytest.param(T.sign("x"), SAMPLES[5][1], "sign_id", id="sign"),
        pytest.param(Topics("xigang", "box-p2").event, event(EVENT_BODIES[0]), "box_id", id="ev"),
        pytest.param(Topics("xigang", "box-p2").status, birth(), "box_id", id="status"),
        pytest.param(T.cmd("open-bay"), command(Rebirth()), "command", id="cmd"),
        pytest.param(T.reply("rebirth"), SAMPLES[-3][1], "command", id="reply"),
    ],
)
def test_decode_message_topic_payload_mismatch(topic: str, payload: Any, reason: str) -> None:
    """A payload about another bay/box/command than its topic names is refused."""
    with pytest.raises(DecodeError, match=f"disagrees with payload: {reason}"):
        decode_message(topic, encode_payload(payload))


def test_decode_message_payload_of_other_kind() -> None:
    """A lot payload on a bay topic fails validation as a BayState."""
    with pytest.raises(DecodeError, match="BayState"):
        decode_message(T.bay("P1"), encode_payload(SAMPLES[3][1]))


aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
id_text = st.text(alphabet="abcXYZ019_.-", min_size=1, max_size=64)
states = st.sampled_from(m.BayOccupancy)
bodies = st.one_of(
    st.builds(
        BayChanged,
        bay_id=id_text,
        lot_id=id_text,
        from_state=states,
        to_state=states,
        sensor_id=st.none() | id_text,
        sensor_ts=aware,
    ),
    st.builds(
        AlertRaised,
        alert_id=id_text,
        alert_type=st.sampled_from(m.AlertType),
        severity=st.sampled_from(m.Severity),
        step=st.integers(0, 10),
        bay_id=st.none() | id_text,
        since=aware,
        message=st.text(max_size=500),
    ),
    st.builds(
        SensorFault,
        sensor_id=id_text,
        fault=st.sampled_from(m.SensorFaultType),
        detail=st.none() | st.text(max_size=500),
    ),
    st.integers(1, 2**62).flatmap(
        lambda first: st.builds(
            EventsDropped,
            first_seq=st.just(first),
            last_seq=st.just(first + 10),
            count=st.integers(0, 11),
            total=st.integers(11, 2**40),
        )
    ),
)


@given(
    box_id=id_text.filter(lambda s: not s.startswith("_")),
    seq=st.integers(1, 2**63 - 1),
    boot=st.uuids(),
    event_id=st.uuids(),
    ts=aware,
    historical=st.booleans(),
    body=bodies,
)
def test_event_property_round_trip(
    box_id: str,
    seq: int,
    boot: uuid.UUID,
    event_id: uuid.UUID,
    ts: datetime,
    historical: bool,
    body: Any,
) -> None:
    """Any valid event decodes from its encoding to an equal event, on its box's topic."""
    if isinstance(body, EventsDropped):
        seq = max(seq, body.last_seq + 1)  # a drop is reported after it, at a later seq
    ev = Event(
        box_id=box_id,
        boot_id=boot,
        seq=seq,
        event_id=event_id,
        ts=ts,
        historical=historical,
        body=body,
    )
    decoded = decode_message(Topics("site", box_id).event, encode_payload(ev)).payload
    assert decoded == ev
    assert isinstance(decoded, Event) and decoded.seq == seq and decoded.kind == body.kind
