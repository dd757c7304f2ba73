"""The county of ``bench/county.py``: Xigang's boxes, lots and stall zones scaled to N towns,
and the busy-hour rate measured from the town simulation.

Each town is Xigang's 7 boxes, 4 car parks (620 bays) and 6 stall zones under its own ids
(``t07-box-p1``, lot ``t07-P1``, bays ``t07-P1-001``...): 50 towns are 350 boxes and 31,000
car-park bays. Signs, cameras, segments, entries, grids and rules are left out: the bench
loads occupancy, which is what a county's boxes send most.

Until one central serves many towns (``central serve --county``), the county is ONE site
file holding every town (``write_county``), a valid site today.
"""

from __future__ import annotations

import bisect
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from _county_boxes import BoxPlan

from firmware_protocols.uplink import Topics
from simulators.sites import XIGANG
from simulators.town import BayChange, plan_town
from simulators.town_clock import HOUR, default_start
from site_model.site import Site, load_site, parse_site

COUNTY_ID = "county"


def town_prefix(n: int) -> str:
    return f"t{n:02d}-"


def _renamed_bays(bays: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {**bays, "pattern": prefix + bays["pattern"]}


def county_doc(towns: int) -> dict[str, Any]:
    """The county as one site document: ``towns`` copies of Xigang, ids prefixed."""
    town = tomllib.loads(XIGANG.read_text(encoding="utf-8"))
    doc: dict[str, Any] = {
        "site": {"id": COUNTY_ID, "name": "Bench county", "timezone": town["site"]["timezone"]},
        "boxes": {},
        "lots": {},
        "zones": {},
    }
    for n in range(1, towns + 1):
        p = town_prefix(n)
        for box_id, box in town["boxes"].items():
            renamed = {"name": f"{p}{box_id}"}
            for key in ("lots", "zones"):
                if key in box:
                    renamed[key] = [p + x for x in box[key]]
            doc["boxes"][p + box_id] = renamed
        for kind in ("lots", "zones"):
            for area_id, area in town[kind].items():
                kept = {k: v for k, v in area.items() if k not in ("name", "box_id", "bays")}
                doc[kind][p + area_id] = {
                    **kept,
                    "name": f"{p}{area['name']}",
                    "box_id": p + area["box_id"],
                    "bays": _renamed_bays(area["bays"], p),
                }
    return doc


def write_county(path: Path, towns: int) -> Site:
    """Write the county's one site file (the stand-in for ``--county FILE``); return it."""
    doc = county_doc(towns)
    site = parse_site(doc)  # refuses an invalid county before anything starts
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return site


def write_county_file(folder: Path, towns: int) -> tuple[Path, Site]:
    """The county as ``serve --county`` reads it: a site file per town (``[site] id`` the
    town's, ``t07``) and a county file naming them; returns the county file and the towns'
    union as one ``Site`` (the bench's plans)."""
    doc = county_doc(towns)
    (folder / "towns").mkdir(parents=True, exist_ok=True)
    lines = ['[county]\nid = "bench"\nname = "Bench county"\n']
    for n in range(1, towns + 1):
        town = town_prefix(n)[:-1]
        part = {"site": {**doc["site"], "id": town, "name": f"Town {town}"}}
        for kind in ("boxes", "lots", "zones"):
            part[kind] = {k: v for k, v in doc[kind].items() if k.startswith(f"{town}-")}
        parse_site(part)
        (folder / "towns" / f"{town}.toml").write_text(tomli_w.dumps(part), encoding="utf-8")
        lines.append(f'[towns.{town}]\nsite = "towns/{town}.toml"\n')
    path = folder / "county.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, parse_site(doc)


@dataclass(frozen=True, slots=True)
class BusyHour:
    """The town simulation's busiest hour: bay changes per box per second, per box role
    (Xigang's box id) and over the town."""

    changes: int
    starts_h: float  # hours after local midnight
    per_box: dict[str, float]  # Xigang box id -> bay changes per second in that hour
    boxes: int

    @property
    def per_box_mean(self) -> float:
        return self.changes / self.boxes / HOUR


def busy_hour(seed: int = 7) -> BusyHour:
    """Plan a market day of Xigang (``plan_town``, from local midnight, 24 h), slide a
    one-hour window over its bay changes (``BayChange``: arrivals and departures, every
    event a box publishes for a car) and keep the window with the most."""
    site = load_site(XIGANG)
    start = default_start(site, at="00:00")
    changes = [e for e in plan_town(site, seed=seed, start=start) if isinstance(e, BayChange)]
    times = [e.at for e in changes]
    best, first = 0, 0
    for i, t in enumerate(times):
        j = bisect.bisect_left(times, t + HOUR)
        if j - i > best:
            best, first = j - i, i
    box_of = {bay_id: site.lots[lot].box_id for lot, bay_id in site.lot_bays()}
    box_of |= {bay_id: site.zones[zone].box_id for zone, bay_id in site.zone_bays()}
    per = Counter(box_of[e.bay_id] for e in changes[first : first + best])
    return BusyHour(
        changes=best,
        starts_h=(times[first] - start) / HOUR,
        per_box={box: per.get(box, 0) / HOUR for box in site.boxes},
        boxes=len(site.boxes),
    )


def box_plans(site: Site, busy: BusyHour) -> list[BoxPlan]:
    """Each county box's bays and its busy-hour rate: its Xigang role's rate in the busiest
    hour (``box-p1`` of every town as Xigang's ``box-p1``)."""
    bays: dict[str, list[tuple[str, str | None, str | None]]] = {b: [] for b in site.boxes}
    for lot_id, bay_id in site.lot_bays():
        bays[site.lots[lot_id].box_id].append((bay_id, lot_id, None))
    for zone_id, bay_id in site.zone_bays():
        bays[site.zones[zone_id].box_id].append((bay_id, None, zone_id))
    plans = []
    for box_id in site.boxes:
        role = box_id.split("-", 1)[1]
        lots = site.lots_of_box(box_id)
        plans.append(
            BoxPlan(
                box_id=box_id,
                rate=busy.per_box[role],
                bays=tuple(bays[box_id]),
                lot_id=lots[0] if lots else None,
            )
        )
    return plans


def town_of(box_id: str) -> str:
    """``t07`` for ``t07-box-p1``."""
    return box_id.split("-", 1)[0]


def scope_boxes_to_their_town(site: Site) -> None:
    """Until central serves a county (each town's boxes on their own town's topics), a box
    of the one-site county subscribes to, and its ACL grants, only its own town's lots and
    statuses, as it will under ``--county``: with the site's ``+/lot/+`` and ``+/status``
    every box hears all 350 boxes, and 350 boxes coming up send each other 350 x 350
    births (measured: on this machine the boxes' event loops fell behind, their births'
    acknowledgements timed out, and they reconnected for minutes). Patches
    ``Topics.box_filters`` in this process (the box and ``central.provision.box_acl`` both
    read it); call it in the parent before the broker's ACL is written and in each box
    process (forked children inherit it)."""
    mates: dict[str, list[str]] = {}
    for box_id in site.boxes:
        mates.setdefault(town_of(box_id), []).append(box_id)
    whole_site = Topics.box_filters

    def box_filters(self: Topics) -> tuple[str, ...]:
        town = mates.get(town_of(self.box_id))
        if self.site != site.id or town is None:
            return whole_site(self)
        heard = [f"{Topics(self.site, mate).prefix}/{tail}" for mate in town
                 for tail in ("lot/+", "status")]  # fmt: skip
        return (self.cmd_filter, self.ack, *heard, self.central_status)

    Topics.box_filters = box_filters  # type: ignore[method-assign]
