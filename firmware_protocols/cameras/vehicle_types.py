"""Both vendors' vehicle-type enumerations, mapped to parkgrid's :class:`VehicleClass`.

Theory of operation
-------------------
A camera names the vehicle it saw with its vendor's enumeration: Hikvision ISAPI
``ANPR/vehicleType`` (``vehicle``, ``truck``, ``largeBus``, ``SUVMPV`` ...), Dahua
``TrafficCar.VehicleType`` / ``Vehicle.Category`` / ``VehicleSize`` (``SaloonCar``,
``LargeTruck``, ``DregsCar`` ...), and Dahua's ITSAPI ``Vehicle.VehicleType``. The tables
below are the whole mapping; the lookup ignores case, spaces, ``-`` and ``_``.

Every goods vehicle is :attr:`VehicleClass.TRUCK` (the truck ban then decides by the plate
colour which trucks are "big"): slag and muck trucks (``slagTruck``, ``DregsCar``, 渣土车),
container, tank, dump and concrete-mixer trucks, heavy, medium, light and micro trucks.

A value in no table is never guessed: :func:`vehicle_type` returns ``UNKNOWN`` with the
raw value in ``unmapped``, which central keeps with the capture and counts for the office
(so the table grows from what cameras really send). The camera's own "don't know" words
(``Unknown``, ``unknow``, ``其他``) are not unmapped values.

The GA vehicle-type code (GA 802, Hikvision's ``VehicleGATInfo/vehicleTypeByGAT``) wins
over the vendor's name when given: ``H..`` goods vehicles and ``Q..`` tractor units are
trucks, ``K1.``/``K2.`` large and medium passenger vehicles buses, other ``K..`` cars,
``M..`` motorcycles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from firmware_protocols.cameras.capture import VehicleClass as VC

_TRUCKS = (
    "truck largeTruck midTruck mediumTruck heavyTruck lightTruck microTruck miniTruck "
    "MediumHeavyTruck slagTruck dregsCar muckTruck dumpTruck containerTruck tankCar tanker "
    "tankTruck concreteMixer mixerTruck boxTruck cargoTruck semiTrailer trailer tractor "
    "oversize largeVehicle 货车 大货车 中型货车 轻型货车 微型货车 渣土车 罐车 搅拌车 集装箱车"
)

HIKVISION_TYPES: dict[str, VC] = {
    "vehicle": VC.CAR,
    "smallCar": VC.CAR,
    "miniCar": VC.CAR,
    "motorVehicle": VC.CAR,
    "SUVMPV": VC.SUV_MPV,
    "SUV": VC.SUV_MPV,
    "MPV": VC.SUV_MPV,
    "van": VC.VAN,
    "buggy": VC.VAN,
    "pickupTruck": VC.PICKUP,
    "largeBus": VC.BUS,
    "mediumBus": VC.BUS,
    "bus": VC.BUS,
    "truck": VC.TRUCK,
    "heavyTruck": VC.TRUCK,
    "lightTruck": VC.TRUCK,
    "twoWheelVehicle": VC.MOTORCYCLE,
    "motorcycle": VC.MOTORCYCLE,
    "threeWheelVehicle": VC.TRICYCLE,
    "tricycle": VC.TRICYCLE,
    "policeCar": VC.POLICE,
    "fireEngine": VC.FIRE,
    "ambulance": VC.AMBULANCE,
    "sanitationTruck": VC.SANITATION,
}

DAHUA_TYPES: dict[str, VC] = {
    "SaloonCar": VC.CAR,
    "Saloon": VC.CAR,
    "Hatchback": VC.CAR,
    "Sedan": VC.CAR,
    "PassengerCar": VC.CAR,
    "MicroCar": VC.CAR,
    "SmallCar": VC.CAR,
    "Light-duty": VC.CAR,
    "Car": VC.CAR,
    "SUV": VC.SUV_MPV,
    "MPV": VC.SUV_MPV,
    "Van": VC.VAN,
    "Microbus": VC.VAN,
    "Minibus": VC.VAN,
    "Pickup": VC.PICKUP,
    "PickupTruck": VC.PICKUP,
    "Bus": VC.BUS,
    "LargeBus": VC.BUS,
    "MiddleBus": VC.BUS,
    "MediumBus": VC.BUS,
    "Coach": VC.BUS,
    "SchoolBus": VC.BUS,
    "Truck": VC.TRUCK,
    "LargeTruck": VC.TRUCK,
    "MidTruck": VC.TRUCK,
    "MediumTruck": VC.TRUCK,
    "MediumHeavyTruck": VC.TRUCK,
    "HeavyTruck": VC.TRUCK,
    "LightTruck": VC.TRUCK,
    "MicroTruck": VC.TRUCK,
    "slagTruck": VC.TRUCK,
    "DregsCar": VC.TRUCK,
    "containerTruck": VC.TRUCK,
    "TankCar": VC.TRUCK,
    "DumpTruck": VC.TRUCK,
    "ConcreteMixer": VC.TRUCK,
    "Oversize": VC.TRUCK,
    "Tractor": VC.TRUCK,
    "Trailer": VC.TRUCK,
    "Motor": VC.MOTORCYCLE,
    "Motorcycle": VC.MOTORCYCLE,
    "LightMotorcycle": VC.MOTORCYCLE,
    "DualTriWheelMotorcycle": VC.TRICYCLE,
    "Tricycle": VC.TRICYCLE,
    "MannedConvertibleTricycle": VC.TRICYCLE,
    "NoMannedConvertibleTricycle": VC.TRICYCLE,
    "ConvertibleTricycle": VC.TRICYCLE,
    "PoliceCar": VC.POLICE,
    "FireEngine": VC.FIRE,
    "Ambulance": VC.AMBULANCE,
    "SanitationTruck": VC.SANITATION,
}

# parkgrid's own names (the capture JSON) and words both vendors share.
_OWN = {vc.value: vc for vc in VC if vc is not VC.UNKNOWN} | {
    "suv_mpv": VC.SUV_MPV,
    "motorbike": VC.MOTORCYCLE,
    "fire": VC.FIRE,
    "police": VC.POLICE,
    "sanitation": VC.SANITATION,
}

# The camera's own "I don't know": not an unmapped value worth showing.
DONT_KNOW = {"", "unknown", "unknow", "other", "others", "none", "null", "其他", "未知"}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


_TABLE: dict[str, VC] = {}
for _name in _TRUCKS.split():
    _TABLE[_key(_name)] = VC.TRUCK
for _source in (HIKVISION_TYPES, DAHUA_TYPES, _OWN):
    for _name, _vc in _source.items():
        _TABLE[_key(_name)] = _vc


@dataclass(frozen=True, slots=True)
class VehicleType:
    vehicle_class: VC
    unmapped: str | None = None  # the camera's value when no table knows it


def _ga(code: str) -> VC | None:
    code = code.strip().upper()
    if code[:1] in ("H", "Q"):
        return VC.TRUCK
    if code[:2] in ("K1", "K2"):
        return VC.BUS
    if code[:1] == "K":
        return VC.CAR
    if code[:1] == "M":
        return VC.MOTORCYCLE
    return None


def vehicle_type(name: str | None, *, ga_vehicle_type: str | None = None) -> VehicleType:
    """The class of a vendor's vehicle-type value (the GA code wins when it decides)."""
    if ga_vehicle_type:
        decided = _ga(ga_vehicle_type)
        if decided is not None:
            return VehicleType(decided)
    if name is None or _key(name) in DONT_KNOW:
        return VehicleType(VC.UNKNOWN)
    found = _TABLE.get(_key(name))
    if found is None:
        return VehicleType(VC.UNKNOWN, unmapped=name.strip()[:64])
    return VehicleType(found)


def vehicle_class_of(name: str | None, *, ga_vehicle_type: str | None = None) -> VC:
    """A vendor's vehicle type as a VehicleClass (UNKNOWN for a value no table knows)."""
    return vehicle_type(name, ga_vehicle_type=ga_vehicle_type).vehicle_class
