"""The site file: what the town has (lots, bays, zones, grids, segments, cameras, boxes).

One TOML file describes a site. ``load_site(path)`` returns a :class:`Site` or raises
:class:`SiteError` carrying every problem found, each a :class:`SiteProblem` with a dotted
path (``lots.P1.box_id``) and a plain sentence, the same way the edge box reports its own
configuration (``edge/config.py``). Cross-references (a lot naming a box that is not
declared, a bay in two lots, a grid naming a zone that does not exist) are checked after the
field-by-field validation, with the same kind of path.

::

    [site]                      id, name, timezone
    [boxes.<box_id>]            name; optional lots/zones lists (must agree with the lots')
    [lots.<lot_id>]             name, box_id, bays = 150 | ["P1-001", ...] | {count, pattern}
    [zones.<zone_id>]           name, class, box_id, bays
    [segments.<segment_id>]     name, road: a no-parking road stretch
    [cameras.<camera_id>]       kind, segment | lots | zones, timezone, max_clock_skew_minutes,
                                spaces (space number -> bay)
    [grids.<grid_id>]           name, kind, duty_role, lots, zones, segments, entries
    [rules.no_parking|truck_ban|left_for_days]   versioned ledger rules (docs/ledger.md)
    [[permits]] / [[exempt]]    plates the rules let pass, with reasons
    [duty]                      case time limits per kind, alerts that open cases
    [entries.<entry_id>]        name, road: a town entry (truck-ban area boundary)
    [signs.<sign_id>]           box_id, kind, lot | zone | segment | entry, message, arrow,
                                fallback ([{lot, arrow}], nearest first)
    [availability]              stale_for_s (site_model/availability.py)

Other domains add their own sections (ledger rules, fines) as new fields of ``Site`` with a
default, so an older file stays valid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, Field

from site_model.availability import AvailabilitySettings
from site_model.configfile import (
    ConfigFileError,
    ConfigProblem,
    file_hash,
    load_file_data,
    validate_file_data,
)

# The sections live in site_model/site_sections.py; the names readers of the site file use
# are importable from here as well.
from site_model.site_sections import ID_PATTERN as ID_PATTERN
from site_model.site_sections import BayRange as BayRange
from site_model.site_sections import (
    BoxEntry,
    BoxIdent,
    CameraEntry,
    EntryPoint,
    GridEntry,
    Ident,
    LotEntry,
    SegmentEntry,
    SignEntry,
    SiteFileModel,
    SiteInfo,
    ZoneEntry,
)
from site_model.site_sections import CameraKind as CameraKind
from site_model.site_sections import FallbackEntry as FallbackEntry
from site_model.site_sections import GridKind as GridKind
from site_model.site_sections import Location as Location
from site_model.site_sections import SignKind as SignKind
from site_model.site_sections import ZoneClass as ZoneClass

# The edge box's config reports problems the same way (site_model/configfile.py).
SiteProblem = ConfigProblem


class SiteError(ConfigFileError):
    """A site file that cannot be used; ``problems`` lists every reason."""


class NoParkingRule(SiteFileModel):
    """No-parking segment: K captures over at least T minutes, no departure in between."""

    version: int = Field(default=1, ge=1, description="bump whenever a value here changes")
    min_captures: int = Field(default=3, ge=1, le=100, description="K")
    min_minutes: float = Field(default=5.0, gt=0, le=1440, description="T")
    max_gap_minutes: float = Field(
        default=30.0, gt=0, description="a longer gap between captures counts as a departure"
    )
    fine_cny: int = Field(default=100, ge=0)
    points: int = Field(default=0, ge=0, le=12)


class TruckBanRule(SiteFileModel):
    """Large goods vehicles inside the ban area, at any hour."""

    version: int = Field(default=1, ge=1, description="bump whenever a value here changes")
    fine_cny: int = Field(default=200, ge=0)
    points: int = Field(default=3, ge=0, le=12)
    segments: list[Ident] | None = Field(
        default=None, description="the ban area's segments (default: every segment)"
    )
    cameras: list[Ident] = Field(
        default_factory=list, description="more cameras in the area (entry cameras always are)"
    )
    plate_colors: list[str] = Field(default_factory=lambda: ["yellow"])
    vehicle_classes: list[str] = Field(default_factory=lambda: ["truck"])


class LeftForDaysRule(SiteFileModel):
    """A vehicle left for days: a tow order."""

    version: int = Field(default=1, ge=1, description="bump whenever a value here changes")
    days: int = Field(default=2, ge=2, le=60, description="seen on this many local days")
    dwell_hours: float = Field(default=48.0, gt=0, description="or standing this long")


class Rules(SiteFileModel):
    no_parking: NoParkingRule = Field(default_factory=NoParkingRule)
    truck_ban: TruckBanRule = Field(default_factory=TruckBanRule)
    left_for_days: LeftForDaysRule = Field(default_factory=LeftForDaysRule)


class PermitEntry(SiteFileModel):
    """The plate may be inside ``area`` (a rule id) from ``valid_from`` to ``valid_until``."""

    plate: str = Field(min_length=2, max_length=32)
    area: str = Field(default="truck_ban", max_length=64)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class ExemptEntry(SiteFileModel):
    """A plate no rule applies to (a listed service vehicle), with the reason."""

    plate: str = Field(min_length=2, max_length=32)
    reason: str = Field(min_length=1, max_length=500)


class DutyLimits(SiteFileModel):
    """Cases: time limits per case kind (``default`` for the rest), and which alerts open one."""

    ack_minutes: dict[str, float] = Field(default_factory=lambda: {"default": 30.0})
    close_hours: dict[str, float] = Field(default_factory=lambda: {"default": 72.0})
    alert_cases: list[str] = Field(
        default_factory=lambda: [
            "zone_overstay",
            "bay_occupied_while_closed",
            "sign_down",
            "outbox_overflow",
            "clock_unsynchronised",
        ],
        description="edge alert types that become cases",
    )

    def ack_s(self, kind: str) -> float:
        return 60.0 * self.ack_minutes.get(kind, self.ack_minutes.get("default", 30.0))

    def close_s(self, kind: str) -> float:
        return 3600.0 * self.close_hours.get(kind, self.close_hours.get("default", 72.0))


class Site(SiteFileModel):
    site: SiteInfo
    boxes: dict[BoxIdent, BoxEntry] = Field(default_factory=dict)
    lots: dict[Ident, LotEntry] = Field(default_factory=dict)
    zones: dict[Ident, ZoneEntry] = Field(default_factory=dict)
    segments: dict[Ident, SegmentEntry] = Field(default_factory=dict)
    cameras: dict[Ident, CameraEntry] = Field(default_factory=dict)
    grids: dict[Ident, GridEntry] = Field(default_factory=dict)
    entries: dict[Ident, EntryPoint] = Field(default_factory=dict)
    signs: dict[Ident, SignEntry] = Field(default_factory=dict)
    rules: Rules = Field(default_factory=Rules)
    permits: list[PermitEntry] = Field(default_factory=list)
    exempt: list[ExemptEntry] = Field(default_factory=list)
    duty: DutyLimits = Field(default_factory=DutyLimits)
    availability: AvailabilitySettings = Field(default_factory=AvailabilitySettings)

    @property
    def id(self) -> str:
        return self.site.id

    def lot_bays(self) -> Iterator[tuple[str, str]]:
        """Every (lot_id, bay_id)."""
        for lot_id, lot in self.lots.items():
            for bay_id in lot.bay_ids(lot_id):
                yield lot_id, bay_id

    def zone_bays(self) -> Iterator[tuple[str, str]]:
        """Every (zone_id, bay_id)."""
        for zone_id, zone in self.zones.items():
            for bay_id in zone.bay_ids(zone_id):
                yield zone_id, bay_id

    def lots_of_box(self, box_id: str) -> list[str]:
        return [lot_id for lot_id, lot in self.lots.items() if lot.box_id == box_id]

    def zones_of_box(self, box_id: str) -> list[str]:
        return [zone_id for zone_id, zone in self.zones.items() if zone.box_id == box_id]


def cross_check(site: Site) -> list[SiteProblem]:
    """Problems that span sections: references, duplicates, disagreeing lists."""
    problems: list[SiteProblem] = []
    owner: dict[str, str] = {}
    for section, items in (("lots", site.lots), ("zones", site.zones)):
        for item_id, item in items.items():
            path = f"{section}.{item_id}"
            if item.box_id not in site.boxes:
                problems.append(
                    SiteProblem(f"{path}.box_id", f"box {item.box_id!r} is not in [boxes]")
                )
            for bay_id in item.bay_ids(item_id):
                if bay_id in owner:
                    problems.append(
                        SiteProblem(f"{path}.bays", f"bay {bay_id!r} is already in {owner[bay_id]}")
                    )
                else:
                    owner[bay_id] = path
    if set(site.lots) & set(site.zones):
        for both in sorted(set(site.lots) & set(site.zones)):
            problems.append(SiteProblem(f"zones.{both}", "a lot already has this id"))
    for box_id, box in site.boxes.items():
        for section, listed, actual in (
            ("lots", box.lots, site.lots_of_box(box_id)),
            ("zones", box.zones, site.zones_of_box(box_id)),
        ):
            if listed is not None and sorted(listed) != sorted(actual):
                problems.append(
                    SiteProblem(
                        f"boxes.{box_id}.{section}",
                        f"lists {sorted(listed)} but the {section} naming this box are "
                        f"{sorted(actual)}",
                    )
                )
    refs: dict[str, Any] = {
        "lots": site.lots,
        "zones": site.zones,
        "segments": site.segments,
        "entries": site.entries,
    }
    for camera_id, camera in site.cameras.items():
        path = f"cameras.{camera_id}"
        if camera.segment is not None and camera.segment not in site.segments:
            problems.append(SiteProblem(f"{path}.segment", f"no segment {camera.segment!r}"))
        if camera.entry is not None and camera.entry not in site.entries:
            problems.append(SiteProblem(f"{path}.entry", f"no entry {camera.entry!r}"))
        if camera.segment is None and camera.entry is None and not camera.lots and not camera.zones:
            problems.append(SiteProblem(path, "a camera needs a segment, an entry, lots or zones"))
        for section in ("lots", "zones"):
            for index, ref in enumerate(getattr(camera, section)):
                if ref not in refs[section]:
                    problems.append(
                        SiteProblem(f"{path}.{section}.{index}", f"no {section[:-1]} {ref!r}")
                    )
        if camera.spaces:
            watched = {b for lot, b in site.lot_bays() if lot in camera.lots}
            watched |= {b for zone, b in site.zone_bays() if zone in camera.zones}
            for number, bay_id in camera.spaces.items():
                if bay_id not in watched:
                    problems.append(
                        SiteProblem(
                            f"{path}.spaces.{number}",
                            f"bay {bay_id!r} is not in the camera's lots or zones",
                        )
                    )
    problems.extend(_sign_problems(site, refs))
    problems.extend(_rule_problems(site))
    for grid_id, grid in site.grids.items():
        for section in ("lots", "zones", "segments", "entries"):
            for index, ref in enumerate(getattr(grid, section)):
                if ref not in refs[section]:
                    problems.append(
                        SiteProblem(
                            f"grids.{grid_id}.{section}.{index}", f"no {_singular(section)} {ref!r}"
                        )
                    )
    return problems


def _singular(section: str) -> str:
    return "entry" if section == "entries" else section[:-1]


def _rule_problems(site: Site) -> list[SiteProblem]:
    problems: list[SiteProblem] = []
    ban = site.rules.truck_ban
    for index, ref in enumerate(ban.segments or []):
        if ref not in site.segments:
            problems.append(SiteProblem(f"rules.truck_ban.segments.{index}", f"no segment {ref!r}"))
    for index, ref in enumerate(ban.cameras):
        if ref not in site.cameras:
            problems.append(SiteProblem(f"rules.truck_ban.cameras.{index}", f"no camera {ref!r}"))
    for index, permit in enumerate(site.permits):
        if permit.valid_until <= permit.valid_from:
            problems.append(SiteProblem(f"permits.{index}.valid_until", "ends before it starts"))
    return problems


def _sign_problems(site: Site, refs: dict[str, Any]) -> list[SiteProblem]:
    problems: list[SiteProblem] = []
    for sign_id, sign in site.signs.items():
        path = f"signs.{sign_id}"
        if sign.box_id not in site.boxes:
            problems.append(SiteProblem(f"{path}.box_id", f"box {sign.box_id!r} is not in [boxes]"))
        targets = {"lots": sign.lot, "zones": sign.zone, "segments": sign.segment}
        targets["entries"] = sign.entry
        for section, ref in targets.items():
            if ref is not None and ref not in refs[section]:
                field = {"lots": "lot", "zones": "zone", "segments": "segment"}.get(
                    section, "entry"
                )
                problems.append(SiteProblem(f"{path}.{field}", f"no {_singular(section)} {ref!r}"))
        if sign.kind is SignKind.GUIDANCE and sign.lot is None:
            problems.append(SiteProblem(f"{path}.lot", "a guidance sign needs the lot it shows"))
        if sign.kind is SignKind.WARNING and sign.zone is None and sign.message is None:
            problems.append(SiteProblem(path, "a warning sign needs a zone or a fixed message"))
        for index, target in enumerate(sign.fallback):
            lot = target.lot
            if lot not in site.lots:
                problems.append(SiteProblem(f"{path}.fallback.{index}", f"no lot {lot!r}"))
            elif lot == sign.lot:
                problems.append(
                    SiteProblem(f"{path}.fallback.{index}", "a lot cannot be its own fallback")
                )
    return problems


def parse_site(data: dict[str, Any], *, source: str = "<site>") -> Site:
    """Validate already-parsed TOML data; raise SiteError with every problem."""
    return validate_file_data(
        data, model=Site, cross_check=cross_check, error=SiteError, source=source
    )


def load_site(path: Path | str) -> Site:
    """Read and validate a site file."""
    return parse_site(load_file_data(path, error=SiteError), source=str(path))


site_hash = file_hash


@dataclass(frozen=True, slots=True, kw_only=True)
class BayPlace:
    """Where the site file puts a bay."""

    box_id: str
    lot_id: str | None = None
    zone_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteIndex:
    """Look-ups the ingest needs per message, built once from a :class:`Site`."""

    site_id: str
    boxes: frozenset[str]
    lots: dict[str, LotEntry]
    zones: dict[str, ZoneEntry]
    bays: dict[str, BayPlace]
    capacity: dict[str, int]
    signs: dict[str, SignEntry]
    # A county (site_model/county.py): each box's town, whose id its topics carry. Empty
    # for one town: every box is in ``site_id``.
    towns: dict[str, str] = field(default_factory=dict)

    @property
    def site_ids(self) -> frozenset[str]:
        """The site ids this central's topics may carry."""
        return frozenset(self.towns.values()) if self.towns else frozenset({self.site_id})

    def site_of(self, box_id: str) -> str:
        """The site id of ``box_id``'s topics (its town's)."""
        return self.towns.get(box_id, self.site_id)

    def with_towns(self, towns: dict[str, str]) -> SiteIndex:
        return replace(self, towns=dict(towns))

    @classmethod
    def of(cls, site: Site) -> SiteIndex:
        bays = {
            bay_id: BayPlace(box_id=site.lots[lot_id].box_id, lot_id=lot_id)
            for lot_id, bay_id in site.lot_bays()
        }
        bays.update(
            {
                bay_id: BayPlace(box_id=site.zones[zone_id].box_id, zone_id=zone_id)
                for zone_id, bay_id in site.zone_bays()
            }
        )
        return cls(
            site_id=site.id,
            boxes=frozenset(site.boxes),
            lots=dict(site.lots),
            zones=dict(site.zones),
            bays=bays,
            capacity={lot_id: len(lot.bay_ids(lot_id)) for lot_id, lot in site.lots.items()},
            signs=dict(site.signs),
        )
