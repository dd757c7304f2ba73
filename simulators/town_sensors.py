"""Which sensor lies in each bay of the town, and which box hears it."""

from __future__ import annotations

from dataclasses import dataclass

from site_model.site import Site

SENSOR_FORMATS = ("nwave-nps", "bosch-pls", "dingtek-do20x")


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorPlan:
    """Which sensor lies in which bay, and which box hears it."""

    box_id: str
    bay_id: str
    place: str  # lot or zone id
    sensor_id: str
    fmt: str


def sensor_plan(site: Site) -> dict[str, SensorPlan]:
    """Every bay's sensor: ids ``1BBBNNNN`` (box index, bay index), formats in turn."""
    plans: dict[str, SensorPlan] = {}
    for box_index, box_id in enumerate(sorted(site.boxes), start=1):
        places = [(lot_id, lot.bay_ids(lot_id)) for lot_id, lot in site.lots.items()]
        places += [(zid, zone.bay_ids(zid)) for zid, zone in site.zones.items()]
        owned = [
            (place, bays)
            for place, bays in places
            if (site.lots[place].box_id if place in site.lots else site.zones[place].box_id)
            == box_id
        ]
        n = 0
        for place, bays in owned:
            for bay_id in bays:
                n += 1
                plans[bay_id] = SensorPlan(
                    box_id=box_id,
                    bay_id=bay_id,
                    place=place,
                    sensor_id=f"{0x10000000 + box_index * 0x10000 + n:08X}",
                    fmt=SENSOR_FORMATS[n % len(SENSOR_FORMATS)],
                )
    return plans
