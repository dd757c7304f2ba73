"""The sections of a site file, as typed data: the site, its boxes, lots and their bays,
stall zones, road segments, town entries, signs, cameras and grids, and the kinds they name.

``site_model.site.Site`` gathers them (with the ledger's rules, permits and duty limits) and
checks what spans sections; every name here is importable from ``site_model.site`` too.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from site_model.timezones import TimeZoneName

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
BOX_ID_PATTERN = r"^[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN)]
BoxIdent = Annotated[str, Field(pattern=BOX_ID_PATTERN)]
MAX_BAYS = 100_000


class SiteFileModel(BaseModel):
    """A part of the site file: unknown keys refused, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneClass(StrEnum):
    PROHIBITED = "prohibited"
    CONTROLLED = "controlled"
    REGULATED = "regulated"


class GridKind(StrEnum):
    ROAD = "road"
    VILLAGE = "village"
    COMMUNITY = "community"


class CameraKind(StrEnum):
    HIKVISION = "hikvision"
    DAHUA = "dahua"
    PARKGRID = "parkgrid"


class SignKind(StrEnum):
    GUIDANCE = "guidance"
    WARNING = "warning"


HOURS_PATTERN = r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"
Hours = Annotated[str, Field(pattern=HOURS_PATTERN, description="'HH:MM-HH:MM', local time")]


class Location(SiteFileModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class BayRange(SiteFileModel):
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


class SiteInfo(SiteFileModel):
    id: Ident
    name: str = Field(min_length=1, max_length=200)
    timezone: TimeZoneName = "Asia/Shanghai"


class BoxEntry(SiteFileModel):
    name: str | None = None
    lots: list[Ident] | None = None
    zones: list[Ident] | None = None


class LotEntry(SiteFileModel):
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


class ZoneEntry(SiteFileModel):
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


class SegmentEntry(SiteFileModel):
    name: str = Field(min_length=1, max_length=200)
    road: str | None = None
    capture: bool = Field(default=True, description="electronic capture of illegal parking")


class EntryPoint(SiteFileModel):
    """A road into the town centre: the boundary of the truck-ban area."""

    name: str = Field(min_length=1, max_length=200)
    road: str | None = None
    location: Location | None = None


SignArrowName = Literal["none", "left", "right", "ahead"]


class FallbackEntry(SiteFileModel):
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


class SignEntry(SiteFileModel):
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


class CameraEntry(SiteFileModel):
    kind: CameraKind
    segment: Ident | None = None
    entry: Ident | None = Field(default=None, description="a truck-ban camera at a town entry")
    lots: list[Ident] = Field(default_factory=list)
    zones: list[Ident] = Field(default_factory=list)
    timezone: TimeZoneName | None = Field(
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


class GridEntry(SiteFileModel):
    name: str = Field(min_length=1, max_length=200)
    kind: GridKind
    duty_role: str = Field(min_length=1, max_length=200, description="a role, never a person")
    lots: list[Ident] = Field(default_factory=list)
    zones: list[Ident] = Field(default_factory=list)
    segments: list[Ident] = Field(default_factory=list)
    entries: list[Ident] = Field(default_factory=list)
