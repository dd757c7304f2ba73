"""Plate grammar, colour words and both vendors' vehicle types (issue 21 findings 4 and 5)."""

from __future__ import annotations

import pytest

from firmware_protocols.cameras import (
    PlateColor,
    VehicleClass,
    ga_plate_type,
    is_readable,
    normalise_plate,
    vehicle_class_of,
)


@pytest.mark.parametrize(
    ("raw", "plate", "colour"),
    [
        ("黄色浙A12345", "浙A12345", PlateColor.YELLOW),
        ("蓝色苏A8HK52", "苏A8HK52", PlateColor.BLUE),
        ("白色京A1234警", "京A1234警", PlateColor.WHITE),
        ("黑色粤Z1234港", "粤Z1234港", PlateColor.BLACK),
        ("绿色粤BD12345", "粤BD12345", PlateColor.GREEN),
        ("渐变绿粤BD12345", "粤BD12345", PlateColor.GREEN),
        ("黄绿色粤B12345D", "粤B12345D", PlateColor.YELLOW_GREEN),
    ],
)
def test_colour_words_as_cameras_write_them(raw: str, plate: str, colour: PlateColor) -> None:
    assert normalise_plate(raw) == (plate, colour)


@pytest.mark.parametrize(
    ("plate", "ga"),
    [
        ("京X1234应急", None),  # emergency (应急管理部): no GA 36 code
        ("WJ京1234J", "31"),  # armed police, 2012 style
        ("WJG12345", "31"),
        ("VT10001", "32"),  # military
        ("民航123AB", None),  # civil aviation (CAAC, not GA)
        ("京A1234警", "23"),
        ("京A1234学", "16"),
        ("京A1234挂", "15"),
        ("沪A1234领", "04"),
        ("使014578", "03"),
        ("粤Z1234港", "26"),
        ("粤Z1234澳", "27"),
        ("粤BD12345", "52"),
        ("粤B12345D", "51"),
    ],
)
def test_every_chinese_plate_kind_is_readable(plate: str, ga: str | None) -> None:
    folded, colour = normalise_plate(plate)
    assert folded == plate
    assert is_readable(plate), plate
    assert ga_plate_type(plate, colour, VehicleClass.CAR) == ga


@pytest.mark.parametrize("text", ["京A12", "AB1234567", "苏I12345", "粤B1234", "WJ", "VT1000"])
def test_not_plates_stay_unreadable(text: str) -> None:
    assert not is_readable(text)


def test_dahua_yellow_bottom_black_text_is_yellow() -> None:
    assert normalise_plate("浙A12345", "YellowbottomBlackText") == ("浙A12345", PlateColor.YELLOW)


@pytest.mark.parametrize(
    "name",
    [
        "slagTruck",
        "DregsCar",
        "containerTruck",
        "MediumHeavyTruck",
        "LightTruck",
        "lightTruck",
        "MicroTruck",
        "LargeTruck",
        "MidTruck",
        "TankCar",
    ],
)
def test_every_dahua_truck_kind_is_a_truck(name: str) -> None:
    assert vehicle_class_of(name) is VehicleClass.TRUCK


@pytest.mark.parametrize(
    ("name", "vclass"),
    [
        ("Motor", VehicleClass.MOTORCYCLE),
        ("saloon", VehicleClass.CAR),
        ("hatchback", VehicleClass.CAR),
        ("minibus", VehicleClass.VAN),
        ("heavyTruck", VehicleClass.TRUCK),
        ("largeBus", VehicleClass.BUS),
    ],
)
def test_other_vendor_types(name: str, vclass: VehicleClass) -> None:
    assert vehicle_class_of(name) is vclass


def test_unknown_value_is_kept_raw_not_silently_mapped() -> None:
    from firmware_protocols.cameras.vehicle_types import vehicle_type

    found = vehicle_type("Excavator")
    assert found.vehicle_class is VehicleClass.UNKNOWN
    assert found.unmapped == "Excavator"
    # the camera saying "unknown" is not an unmapped value
    assert vehicle_type("Unknown").unmapped is None


def test_tables_map_every_value_they_list() -> None:
    from firmware_protocols.cameras.vehicle_types import DAHUA_TYPES, HIKVISION_TYPES

    for table in (DAHUA_TYPES, HIKVISION_TYPES):
        for name, vclass in table.items():
            assert vehicle_class_of(name) is vclass, name


def test_docs_list_every_mapping() -> None:
    """docs/cameras.md lists every vendor value the tables map and every GA code derived."""
    from pathlib import Path

    from firmware_protocols.cameras.plates import GA_PLATE_TYPES
    from firmware_protocols.cameras.vehicle_types import DAHUA_TYPES, HIKVISION_TYPES

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cameras.md").read_text()
    for name in (*DAHUA_TYPES, *HIKVISION_TYPES):
        assert f"`{name}`" in docs, name
    for code in GA_PLATE_TYPES:
        assert f"| {code}" in docs or f"/ {code}" in docs, code
