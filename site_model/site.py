"""The site file: what the town has (lots, bays, zones, grids, segments, cameras, boxes).

One TOML file describes a site. ``load_site(path)`` returns a :class:`Site` or raises
:class:`SiteError` carrying every problem found, each a :class:`SiteProblem` with a dotted
path (``lots.P1.box_id``) and a plain sentence, the same way the edge box reports its own
configuration (``edge/config.py``). Cross-references (a lot naming a box that is not
declared, a bay in two lots, a grid naming a zone that does not exist) are checked after the
field-by-field validation, with the same kind of path (`site_model/site_checks.py`).

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

Other domains add their own sections (ledger rules, fines) as new fields of ``Site`` with a
default, so an older file stays valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from site_model.configfile import (
    ConfigFileError,
    ConfigProblem,
    file_hash,
    load_file_data,
    validate_file_data,
)

# The sections' kinds and the cross-section checks live in their own modules; both names
# stay importable from here, where every reader of the site file looks for them.
from site_model.site_checks import cross_check
from site_model.site_kinds import CameraKind as CameraKind
from site_model.site_kinds import GridKind as GridKind
from site_model.site_kinds import SignKind as SignKind
from site_model.site_kinds import ZoneClass as ZoneClass

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
BOX_ID_PATTERN = r"^[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN)]
BoxIdent = Annotated[str, Field(pattern=BOX_ID_PATTERN)]
MAX_BAYS = 100_000


# The edge box's config reports problems the same way (site_model/configfile.py).
SiteProblem = ConfigProblem


class SiteError(ConfigFileError):
    """A site file that cannot be used; ``problems`` lists every reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


HOURS_PATTERN = r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"
Hours = Annotated[str, Field(pattern=HOURS_PATTERN, description="'HH:MM-HH:MM', local time")]


class Location(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class BayRange(_Model):
    """``count`` bays named by ``pattern`` (``{n}`` is 1-based from ``start``)."""

    count: int = Field(ge=0, le=MAX_BAYS)
    pattern: str = Field(description="e.g. 'P1-{n:03d}'")
    start: int = Field(default=1, ge=0)

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            sample = value.format(n=1)
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"{value!r} is not a bay id pattern such as 'P1-{{n:03d}}'") from None
        if sample == value:
            raise ValueError(f"{value!r} has no {{n}}: every bay would get the same id")
        return value

    def ids(self) -> list[str]:
        return [self.pattern.format(n=n) for n in range(self.start, self.start + self.count)]


BAYS_FORMS = "bays must be a count (150), a list of bay ids, or {count, pattern}"
_ident = re.compile(ID_PATTERN)


def _bays_value(value: object) -> object:
    """Any wrong ``bays`` becomes one sentence, not one pydantic error per union member."""
    if isinstance(value, bool):
        raise ValueError(f"{BAYS_FORMS}, not {value!r}")
    if isinstance(value, int):
        if not 0 <= value <= MAX_BAYS:
            raise ValueError(f"{BAYS_FORMS}; a count is 0 to {MAX_BAYS}, not {value}")
        return value
    if isinstance(value, list):
        bad_items = [i for i, item in enumerate(value) if not _is_ident(item)]
        if bad_items:
            raise ValueError(
                f"{BAYS_FORMS}; item {bad_items[0]} ({value[bad_items[0]]!r}) is not a bay id "
                "(1 to 64 letters, digits, '_', '.', '-')"
            )
        return value
    if isinstance(value, BayRange):
        return value
    if isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key not in BayRange.model_fields)
        missing = [key for key in ("count", "pattern") if key not in value]
        if unknown or missing:
            wrong = [f"lacks {', '.join(missing)}"] if missing else []
            wrong += [f"has unknown key(s) {', '.join(unknown)}"] if unknown else []
            raise ValueError(f"{BAYS_FORMS}; this table {' and '.join(wrong)}")
        # The right keys: pydantic checks their values, each at its own path (bays.count).
        return value
    raise ValueError(f"{BAYS_FORMS}, not {type(value).__name__} {value!r}")


def _is_ident(item: object) -> bool:
    return isinstance(item, str) and _ident.fullmatch(item) is not None


# The union stays for the JSON schema and the type checker. The before-validator answers for
# every value of the wrong shape; a {count, pattern} table of the right shape goes on to
# BayRange, whose errors problems_from_validation_error reports at their own paths.
Bays = Annotated[int | list[Ident] | BayRange, BeforeValidator(_bays_value)]


def _expand_bays(owner: str, bays: Bays) -> list[str]:
    if isinstance(bays, int):
        return [f"{owner}-{n:03d}" for n in range(1, bays + 1)]
    if isinstance(bays, BayRange):
        return bays.ids()
    return list(bays)


class SiteInfo(_Model):
    id: Ident
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


class BoxEntry(_Model):
    name: str | None = None
    lots: list[Ident] | None = None
    zones: list[Ident] | None = None


class LotEntry(_Model):
    name: str = Field(min_length=1, max_length=200)
    box_id: BoxIdent
    bays: Bays = Field(description="a count, a list of bay ids, or {count, pattern}")
    location: Location | None = None
    address: str | None = None
    hours: Hours | None = Field(default=None, description="opening hours; none: always open")
    full_band: int = Field(
        default=0,
        ge=0,
        description="full while this many bays or fewer are free (0: only with none free)",
    )

    def bay_ids(self, lot_id: str) -> list[str]:
        return _expand_bays(lot_id, self.bays)


class ZoneEntry(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    zone_class: ZoneClass = Field(alias="class")
    box_id: BoxIdent
    bays: Bays = Field(default_factory=list)
    location: Location | None = None
    trading_hours: list[Hours] = Field(
        default_factory=list, description="trading windows, every day; may cross midnight"
    )
    grace_min: int = Field(default=10, ge=0, le=24 * 60, description="after close, before alert")

    def bay_ids(self, zone_id: str) -> list[str]:
        return _expand_bays(zone_id, self.bays)


class SegmentEntry(_Model):
    name: str = Field(min_length=1, max_length=200)
    road: str | None = None
    capture: bool = Field(default=True, description="electronic capture of illegal parking")


class EntryPoint(_Model):
    """A road into the town centre: the boundary of the truck-ban area."""

    name: str = Field(min_length=1, max_length=200)
    road: str | None = None
    location: Location | None = None


SignArrowName = Literal["none", "left", "right", "ahead"]


class FallbackEntry(_Model):
    """A lot a full lot's sign sends drivers to, and which way it lies from that sign."""

    lot: Ident
    arrow: SignArrowName = Field(description="the way from the sign: left, right, ahead, none")


def _fallback_value(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            f"give the way to {value!r} as well: {{ lot = {json.dumps(value)}, "
            'arrow = "left" | "right" | "ahead" }'
        )
    return value


Fallback = Annotated[FallbackEntry, BeforeValidator(_fallback_value)]


class SignEntry(_Model):
    """A sign in the street, driven by a box: a lot's guidance sign or a warning sign."""

    box_id: BoxIdent
    kind: SignKind
    lot: Ident | None = None
    zone: Ident | None = None
    segment: Ident | None = None
    entry: Ident | None = None
    message: str | None = Field(default=None, description="warning: a fixed message name")
    arrow: SignArrowName = Field(default="none", description="guidance: the way into its own lot")
    fallback: list[Fallback] = Field(default_factory=list, description="lots, ways; nearest first")


class CameraEntry(_Model):
    kind: CameraKind
    segment: Ident | None = None
    entry: Ident | None = Field(default=None, description="a truck-ban camera at a town entry")
    lots: list[Ident] = Field(default_factory=list)
    zones: list[Ident] = Field(default_factory=list)
    timezone: str | None = Field(
        default=None,
        description="the zone the camera's clock is set to (Dahua UTC/LocaleTime are local "
        "wall time); default the site's",
    )
    max_clock_skew_minutes: float | None = Field(
        default=None,
        gt=0,
        le=525_600,
        description="a capture further than this from its receipt is held for a person "
        "(default: central's camera_clock_skew_minutes, 10)",
    )
    spaces: dict[str, Ident] = Field(
        default_factory=dict,
        description="the camera's parking-space numbers (Dahua TrafficParkingSpace*) -> bay ids",
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


class GridEntry(_Model):
    name: str = Field(min_length=1, max_length=200)
    kind: GridKind
    duty_role: str = Field(min_length=1, max_length=200, description="a role, never a person")
    lots: list[Ident] = Field(default_factory=list)
    zones: list[Ident] = Field(default_factory=list)
    segments: list[Ident] = Field(default_factory=list)
    entries: list[Ident] = Field(default_factory=list)


class NoParkingRule(_Model):
    """No-parking segment: K captures over at least T minutes, no departure in between."""

    version: int = Field(default=1, ge=1, description="bump whenever a value here changes")
    min_captures: int = Field(default=3, ge=1, le=100, description="K")
    min_minutes: float = Field(default=5.0, gt=0, le=1440, description="T")
    max_gap_minutes: float = Field(
        default=30.0, gt=0, description="a longer gap between captures counts as a departure"
    )
    fine_cny: int = Field(default=100, ge=0)
    points: int = Field(default=0, ge=0, le=12)


class TruckBanRule(_Model):
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


class LeftForDaysRule(_Model):
    """A vehicle left for days: a tow order."""

    version: int = Field(default=1, ge=1, description="bump whenever a value here changes")
    days: int = Field(default=2, ge=2, le=60, description="seen on this many local days")
    dwell_hours: float = Field(default=48.0, gt=0, description="or standing this long")


class Rules(_Model):
    no_parking: NoParkingRule = Field(default_factory=NoParkingRule)
    truck_ban: TruckBanRule = Field(default_factory=TruckBanRule)
    left_for_days: LeftForDaysRule = Field(default_factory=LeftForDaysRule)


class PermitEntry(_Model):
    """The plate may be inside ``area`` (a rule id) from ``valid_from`` to ``valid_until``."""

    plate: str = Field(min_length=2, max_length=32)
    area: str = Field(default="truck_ban", max_length=64)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class ExemptEntry(_Model):
    """A plate no rule applies to (a listed service vehicle), with the reason."""

    plate: str = Field(min_length=2, max_length=32)
    reason: str = Field(min_length=1, max_length=500)


class DutyLimits(_Model):
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


class Site(_Model):
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
