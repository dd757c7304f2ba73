"""Any bytes into the new readers: a Reading or a DecodeError, never another exception."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols.cameras import read_dahua, read_hikvision
from firmware_protocols.errors import DecodeError
from tests.firmware_protocols.camera_corpus import STREAM_TYPE, attach_stream, sample

SEEDS = [
    attach_stream(),
    sample("dahua-snapmanager-events.txt"),
    sample("dahua-itsapi-tollgate.json"),
    sample("hikvision-anpr.json"),
]
_KEY = st.from_regex(r"\A[A-Za-z\[\]0-9.]{1,30}\Z")
_LINES = st.lists(st.tuples(_KEY, st.text(max_size=20)), max_size=20).map(
    lambda pairs: "\n".join(f"{k}={v}" for k, v in pairs).encode()
)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.sampled_from(SEEDS),
    cut=st.integers(min_value=0, max_value=20_000),
    flip=st.integers(min_value=0, max_value=20_000),
    byte=st.integers(min_value=0, max_value=255),
    content_type=st.sampled_from([STREAM_TYPE, "text/plain", "application/json", None]),
)
def test_damaged_samples_never_escape(
    seed: bytes, cut: int, flip: int, byte: int, content_type: str | None
) -> None:
    body = bytearray(seed[: max(1, cut)])
    if body:
        body[flip % len(body)] = byte
    with contextlib.suppress(DecodeError):
        read_dahua(bytes(body), content_type)
    with contextlib.suppress(DecodeError):
        read_hikvision(bytes(body), "application/json")


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_key_value_text_never_escapes(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        read_dahua(b"Events[0].Code=TrafficJunction\n" + body, "text/plain")


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_FIELDS = st.sampled_from(
    [
        "UTC",
        "RealUTC",
        "UTCMS",
        "LocaleTime",
        "EventID",
        "GroupID",
        "UUID",
        "Lane",
        "Action",
        "ParkingSpaceNo",
        "TrafficCar",
        "Object",
        "Vehicle",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(["TrafficJunction", "TrafficParking", "TrafficParkingSpaceParking"]),
    data=st.dictionaries(_FIELDS, _VALUES, max_size=8),
    car=st.dictionaries(
        st.sampled_from(
            ["PlateNumber", "PlateColor", "VehicleType", "PlateType", "DrivingDirection"]
        ),
        _VALUES,
        max_size=5,
    ),
)
def test_odd_json_values_never_escape(code: str, data: dict, car: dict) -> None:
    import json

    data = {"EventID": 1, "UTC": 1706625295, **data}
    if isinstance(data.get("TrafficCar"), dict) or "TrafficCar" not in data:
        data["TrafficCar"] = car
    body = json.dumps({"Code": code, "Data": data}, allow_nan=True).encode()
    with contextlib.suppress(DecodeError):
        read_dahua(body, "application/json")
