"""Availability: whether a box, a lot, a bay or a zone can be believed now. One rule, pure.

The box (its guidance signs pointing at a neighbour's lot), central (``/api/v1/lots``, the
bays, the zones, the boxes) and, through the API, the dashboard all decide with these
functions, so a lot whose box went silent reads the same everywhere.

    the box (as MQTT says)               availability    what its figures say
    online                               online          as reported (once republished
                                                         on its present connection)
    never heard (no status, no figures)  unknown         nothing
    offline for less than stale_for_s    stale           the last figures, with their age
    offline for stale_for_s or longer    unknown         occupied kept, free counted unknown

A bay is unknown at its box once its sensor has been silent for its heartbeat timeout
(``sensor_silent``; the timeout is per sensor, in the box's edge.toml). A lot whose box is
online but whose figures vouch for nothing reads ``unknown`` too: no bay
in service has a known state, or it looks full (its status full) while more than
``FULL_UNKNOWN_MAX_PERCENT`` of its bays in service are unknown (a restarted box that has
heard only a few sensors must not call its lot full, nor send drivers away from it).

``stale_for_s`` is the site file's ``[availability]`` section (default 0: a cut-off box's
figures are unknown at once, as before the section existed). The age of stale figures is the
time since central (or the box reading them) last heard from their box. A sign cannot show
an age, so a guidance sign offers only an ``online`` lot as a fallback; a stale one is shown
with its age by the API and the dashboard. Nothing here reads a clock: the caller passes the
age.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

FULL_UNKNOWN_MAX_PERCENT = 10  # a lot with more bays unknown than this is not called full


class Availability(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    UNKNOWN = "unknown"


class AvailabilitySettings(BaseModel):
    """The site file's ``[availability]`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stale_for_s: float = Field(
        default=0.0,
        ge=0,
        le=7 * 86400,
        description="after a box goes offline, its last figures are shown stale, with their "
        "age, for this many seconds; then they are unknown (0: unknown at once)",
    )


DEFAULT_SETTINGS = AvailabilitySettings()


def box_availability(
    online: bool | None,
    age_s: float | None,
    settings: AvailabilitySettings = DEFAULT_SETTINGS,
) -> Availability:
    """A box: ``online`` as its retained status says, None when never heard; ``age_s`` the
    seconds since it was last heard (None: unknown)."""
    if online:
        return Availability.ONLINE
    if online is None or age_s is None:
        return Availability.UNKNOWN
    return Availability.STALE if age_s < settings.stale_for_s else Availability.UNKNOWN


def sensor_silent(silent_for_s: float, heartbeat_timeout_s: float) -> bool:
    """A bay's sensor has been silent too long: its bay is unknown (never counted free)."""
    return silent_for_s >= heartbeat_timeout_s


def figures_unknown(*, capacity: int, unknown: int, closed: int, status: str) -> bool:
    """A lot's figures vouch for nothing: no bay in service is known, or it looks full
    (``status`` full: no more free bays known than its full band) while more than
    ``FULL_UNKNOWN_MAX_PERCENT`` of the bays in service are unknown."""
    in_service = capacity - closed
    if in_service <= 0:
        return False
    if unknown >= in_service:
        return True
    return status == "full" and unknown * 100 > in_service * FULL_UNKNOWN_MAX_PERCENT


@dataclass(frozen=True, slots=True, kw_only=True)
class LotFigures:
    """A lot's counts as its box reported them (``status`` the DATEX II name)."""

    capacity: int
    free: int
    occupied: int
    unknown: int
    closed: int
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LotView:
    """What to say about a lot now: its availability, the figures to show, their age."""

    availability: Availability
    free: int
    occupied: int
    unknown: int
    closed: int
    status: str  # the DATEX II name, or "unknown"
    age_s: float | None  # seconds since the figures were last vouched for; None when online

    @property
    def stale(self) -> bool:
        """Not current (the API's ``stale`` flag): stale or unknown."""
        return self.availability is not Availability.ONLINE


def lot_view(
    box: Availability,
    figures: LotFigures | None,
    *,
    capacity: int,
    age_s: float | None,
    current: bool = True,
) -> LotView:
    """A lot from its box's availability and its last reported figures (None: never).
    ``current``: the figures came on the box's present connection; figures from before it
    (a box back from a network cut, not yet republished) are unknown, never shown as now."""
    if box is Availability.ONLINE and not current:
        box = Availability.UNKNOWN
    if figures is None:
        return LotView(
            availability=Availability.UNKNOWN,
            free=0,
            occupied=0,
            unknown=capacity,
            closed=0,
            status="unknown",
            age_s=None,
        )
    age = None if box is Availability.ONLINE else age_s
    vouched = not figures_unknown(
        capacity=figures.capacity,
        unknown=figures.unknown,
        closed=figures.closed,
        status=figures.status,
    )
    if box is not Availability.UNKNOWN and (vouched or figures.status == "closed"):
        return LotView(
            availability=box,
            free=figures.free,
            occupied=figures.occupied,
            unknown=figures.unknown,
            closed=figures.closed,
            status=figures.status,
            age_s=age,
        )
    # Unknown: what was free may be taken by now; it is unknown, never free.
    closed = figures.closed
    return LotView(
        availability=Availability.UNKNOWN,
        free=0,
        occupied=figures.occupied,
        unknown=max(0, figures.capacity - figures.occupied - closed),
        closed=closed,
        status="closed" if figures.status == "closed" else "unknown",
        age_s=age,
    )


def bay_view(
    box: Availability, reported: str | None, *, current: bool = True
) -> tuple[Availability, str]:
    """A bay: (availability, the state to believe). A bay last reported free is unknown once
    its box is unknown, or its report is from before the box's present connection
    (``current`` False); occupied and closed are kept (a car or a closure is no space)."""
    if box is Availability.ONLINE and not current:
        box = Availability.UNKNOWN
    if reported is None:
        return Availability.UNKNOWN, "unknown"
    if box is Availability.UNKNOWN and reported == "free":
        return Availability.UNKNOWN, "unknown"
    return box, reported


def zone_view(box: Availability, reported: bool, *, current: bool = True) -> Availability:
    """A stall zone: its box's availability once it has reported on the box's present
    connection (a box back online has not republished it yet: unknown), else unknown."""
    if box is Availability.ONLINE and not current:
        return Availability.UNKNOWN
    return box if reported else Availability.UNKNOWN


def fallback_eligible(box: Availability, figures: LotFigures) -> bool:
    """Whether a guidance sign may send drivers to this lot: its box is online (a sign
    cannot show an age), its figures vouch for a free bay, and it is not full or closed."""
    if box is not Availability.ONLINE:
        return False
    view = lot_view(box, figures, capacity=figures.capacity, age_s=None)
    return view.status not in ("full", "closed", "unknown") and view.free > 0
