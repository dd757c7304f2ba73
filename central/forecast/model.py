"""Free bays ahead: a lot's daily profile plus its current anomaly, fitted per horizon.

The model (docs/forecast.md explains the choice):

    occupancy(t + h) = P(t + h) + a_h * (y(t) - P(t)) + b_h * (dy(t) - dP(t))

``y`` is the lot's occupancy as a fraction of its capacity, ``P`` its profile (the mean of
the same day type and quarter hour in its own history; the day type is the weekday, or
``holiday`` for a date in the calendar file, with each weekday shrunk towards the mean of
its group, workdays or rest days, so three weeks are enough), ``dy`` the change over the
last 15 minutes. ``a_h``, ``b_h`` are least-squares fits per horizon (15, 30, 60 min):
how long today's difference from the usual day lasts, and how much the current trend
carries. The interval is the 10th to 90th percentile of held-out residuals (split-conformal
style): each training point's residual is taken with the profile read without its own day
(and its target's), as a forecast meets a day the profile never saw, and the quantiles are
kept per hour of the day the forecast is made (a quiet night and a morning peak differ).

Real records are untidy; ``prepare`` copes (each case is tested):

* uneven sampling: resampled to a 5-minute grid, each point the last report at or before
  it, and missing when the last report is over 30 minutes old;
* lots that report only part of the day: the missing hours stay missing; where the
  profile has no data the forecast is persistence, said so (``basis``);
* clock changes: local time comes from each record's own UTC offset (ISO 8601);
* counts above capacity: full when the lot was filling up to it (an overcount), dropped
  when they jump there (a glitch, over a quarter of capacity from the last report);
  below 0: 0;
* stuck sensors: a value unchanged for 8 hours that spans the day (any of 08:00-20:00)
  is dropped as not a measurement, unless it is 0 or the capacity (a shut or a full lot).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

STEP_S = 300.0  # the grid
MAX_GAP_S = 1800.0  # a report older than this is not the current value
BIN_S = 900  # profile bins: quarter hours
BINS = 96
HORIZONS_MIN = (15, 30, 60)
TREND_S = 900.0
STUCK_S = 8 * 3600.0
MIN_DAYS = 7  # distinct local days with data, before a lot gets a forecast
MIN_POINTS_PER_DAY = 24  # two hours of 5-minute points
SPIKE = 0.25  # a jump above capacity by more than this share of it is a glitch
SHRINK = 3.0  # days: how strongly a weekday's mean leans on its group's
LOW_Q, HIGH_Q = 0.1, 0.9  # the interval: 10th to 90th percentile of held-out residuals
MIN_PER_HOUR = 60  # residuals an hour of the day needs for its own interval
WORKDAY, RESTDAY = "workday", "restday"


@dataclass(frozen=True, slots=True)
class Observation:
    """One report: ``at`` an aware time (its offset is the lot's clock), counts."""

    at: dt.datetime
    occupied: float
    capacity: int


@dataclass(frozen=True, slots=True)
class Calendar:
    """Public holidays, and weekend days that are workdays (调休)."""

    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()

    def day_type(self, day: dt.date) -> str:
        return "holiday" if day in self.holidays else str(day.weekday())

    def group(self, day: dt.date) -> str:
        if day in self.holidays:
            return RESTDAY
        if day in self.workdays:
            return WORKDAY
        return RESTDAY if day.weekday() >= 5 else WORKDAY


@dataclass(slots=True)
class Grid:
    """A lot's history on the 5-minute grid: epoch, local wall time, fraction (or None)."""

    ts: list[float] = field(default_factory=list)
    local: list[dt.datetime] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)
    capacity: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def at(self, t: float) -> float | None:
        """The value at grid time ``t`` (None off the grid or missing)."""
        i = bisect.bisect_left(self.ts, t - 1e-6)
        if i < len(self.ts) and abs(self.ts[i] - t) < 1e-6:
            return self.y[i]
        return None


def _stuck_spans(obs: Sequence[Observation]) -> list[tuple[float, float]]:
    """Runs of one unchanged value lasting STUCK_S and touching daytime: not measurements."""
    spans: list[tuple[float, float]] = []
    i = 0
    while i < len(obs):
        j = i
        while j + 1 < len(obs) and obs[j + 1].occupied == obs[i].occupied:
            j += 1
        start, end = obs[i].at, obs[j].at
        value = obs[i].occupied
        empty_or_full = value <= 0 or value >= obs[i].capacity  # a shut lot, a full one: real
        if (end - start).total_seconds() >= STUCK_S and not empty_or_full:
            hours = {
                (start + dt.timedelta(seconds=s)).hour
                for s in range(0, int((end - start).total_seconds()) + 1, 1800)
            }
            if hours & set(range(8, 20)):
                spans.append((start.timestamp(), end.timestamp()))
        i = j + 1
    return spans


def prepare(observations: Iterable[Observation], *, capacity: int | None = None) -> Grid:
    """Untidy reports to a clean 5-minute grid (see the module's list of quirks)."""
    obs = sorted(observations, key=lambda o: o.at.timestamp())
    grid = Grid(dropped={"above_capacity": 0, "below_zero": 0, "stuck": 0, "duplicate": 0})
    if not obs:
        return grid
    caps = [o.capacity for o in obs if o.capacity > 0]
    grid.capacity = capacity or (max(set(caps), key=caps.count) if caps else 0)
    if grid.capacity <= 0:
        return grid
    clean: list[Observation] = []
    for o in obs:
        cap = o.capacity if o.capacity > 0 else grid.capacity
        value = o.occupied
        if not math.isfinite(value):
            continue
        if value > cap:
            grid.dropped["above_capacity"] += 1
            previous = clean[-1].occupied / grid.capacity * cap if clean else None
            if previous is None or value - previous > SPIKE * cap:
                continue  # a glitch, not a count: keep the last good one
            value = cap  # an overcount near full: full
        elif value < 0:
            grid.dropped["below_zero"] += 1
            value = 0
        if clean and clean[-1].at.timestamp() == o.at.timestamp():
            grid.dropped["duplicate"] += 1
            clean[-1] = Observation(o.at, value / cap * grid.capacity, grid.capacity)
            continue
        clean.append(Observation(o.at, value / cap * grid.capacity, grid.capacity))
    stuck = _stuck_spans(clean)
    epochs = [o.at.timestamp() for o in clean]
    first = math.ceil(epochs[0] / STEP_S) * STEP_S
    t = first
    k = 0
    s = 0
    while t <= epochs[-1] + 1e-6:
        while k + 1 < len(epochs) and epochs[k + 1] <= t:
            k += 1
        last = clean[k]
        value: float | None = last.occupied / grid.capacity
        if t - epochs[k] > MAX_GAP_S:
            value = None
        while s < len(stuck) and stuck[s][1] < t:
            s += 1
        if value is not None and s < len(stuck) and stuck[s][0] <= t <= stuck[s][1]:
            grid.dropped["stuck"] += 1
            value = None
        offset = last.at.utcoffset() or dt.timedelta(0)
        grid.ts.append(t)
        grid.local.append(dt.datetime.fromtimestamp(t, dt.UTC).replace(tzinfo=None) + offset)
        grid.y.append(value)
        t += STEP_S
    return grid


def _bin(local: dt.datetime) -> int:
    return (local.hour * 3600 + local.minute * 60) // BIN_S


Key = tuple[str, int]  # (day type or group, quarter-hour bin)


class ProfileSums:
    """Occupancy sums per (day type, bin) and per (group, bin), kept day by day, so the
    profile can be read as it would be without some days (the days a residual is scored on).
    """

    def __init__(self, grid: Grid, calendar: Calendar, *, until: float | None = None) -> None:
        self.calendar = calendar
        self.sums: dict[Key, list[float]] = {}
        self.by_day: dict[Key, dict[dt.date, list[float]]] = {}
        for t, local, y in zip(grid.ts, grid.local, grid.y, strict=True):
            if y is None or (until is not None and t >= until):
                continue
            day, b = local.date(), _bin(local)
            for key in ((calendar.day_type(day), b), (calendar.group(day), b)):
                acc = self.sums.setdefault(key, [0.0, 0.0])
                acc[0] += y
                acc[1] += 1
                per_day = self.by_day.setdefault(key, {}).setdefault(day, [0.0, 0.0])
                per_day[0] += y
                per_day[1] += 1

    def _mean(self, key: Key, without: frozenset[dt.date]) -> tuple[float, int] | None:
        """The mean at ``key`` and its number of days, leaving ``without`` out."""
        found = self.sums.get(key)
        if found is None:
            return None
        total, n = found
        days = self.by_day[key]
        left_out = 0
        for day in without:
            if day in days:
                total -= days[day][0]
                n -= days[day][1]
                left_out += 1
        if n <= 0:
            return None
        return total / n, len(days) - left_out

    def mean(self, key: Key, without: frozenset[dt.date] = frozenset()) -> float | None:
        """A weekday's mean shrunk towards its group's (by SHRINK days); a group's as is."""
        own = self._mean(key, without)
        kind, b = key
        if own is None or kind in (WORKDAY, RESTDAY):
            return None if own is None else own[0]
        group = self._mean((RESTDAY if kind in ("5", "6", "holiday") else WORKDAY, b), without)
        if group is None:
            return own[0]
        mean, n_days = own
        return (n_days * mean + SHRINK * group[0]) / (n_days + SHRINK)

    def value(self, local: dt.datetime, without: frozenset[dt.date] = frozenset()) -> float | None:
        """The profile at ``local``: its day type's mean, else its group's."""
        day, b = local.date(), _bin(local)
        own = self.mean((self.calendar.day_type(day), b), without)
        return own if own is not None else self.mean((self.calendar.group(day), b), without)


@dataclass(frozen=True, slots=True)
class Profile:
    """Mean occupancy fraction per (day type, bin), shrunk towards its group's mean."""

    means: dict[Key, float]
    calendar: Calendar

    def value(self, local: dt.datetime) -> float | None:
        day = local.date()
        b = _bin(local)
        own = self.means.get((self.calendar.day_type(day), b))
        if own is not None:
            return own
        return self.means.get((self.calendar.group(day), b))


def fit_profile(grid: Grid, calendar: Calendar, *, until: float | None = None) -> Profile:
    return _profile(ProfileSums(grid, calendar, until=until))


def _profile(sums: ProfileSums) -> Profile:
    means = {key: sums.mean(key) for key in sums.sums}
    return Profile(means={k: v for k, v in means.items() if v is not None}, calendar=sums.calendar)


@dataclass(frozen=True, slots=True)
class HorizonFit:
    minutes: int
    a: float  # how much of the current anomaly remains
    b: float  # how much of the current trend anomaly carries
    low: float  # residual quantiles (fraction of capacity), all hours
    high: float
    n: int
    hourly: tuple[tuple[float, float] | None, ...] = ()  # the same, by the origin's hour

    def band(self, hour: int) -> tuple[float, float]:
        """The residual quantiles for an origin at ``hour``; all hours' where it has few."""
        own = self.hourly[hour] if hour < len(self.hourly) else None
        return own if own is not None else (self.low, self.high)


@dataclass(frozen=True, slots=True)
class LotModel:
    capacity: int
    profile: Profile
    horizons: tuple[HorizonFit, ...]
    days: int
    trained_until: float


class TooLittleHistory(Exception):
    """Not enough of the lot's own history to forecast; ``detail`` says how much there is."""

    def __init__(self, detail: str, *, days: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.days = days


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


ProfileAt = Callable[[dt.datetime], float | None]


def _features(grid: Grid, profile: ProfileAt, i: int) -> tuple[float, float, float] | None:
    """(anomaly now, trend anomaly, profile now) at grid index ``i``, or None."""
    y = grid.y[i]
    p = profile(grid.local[i])
    if y is None or p is None:
        return None
    back = i - int(TREND_S / STEP_S)
    trend = 0.0
    if back >= 0 and grid.y[back] is not None:
        p_back = profile(grid.local[back])
        if p_back is not None:
            trend = (y - grid.y[back]) - (p - p_back)  # type: ignore[operator]
    return y - p, trend, p


Row = tuple[float, float, float, int]  # anomaly now, trend anomaly, ``h`` later; origin's hour


def _held_out_rows(grid: Grid, sums: ProfileSums, end: float, ahead: int) -> list[Row]:
    """Every training origin with its target ``ahead`` steps later, the profile read
    without the origin's and the target's days: as a forecast meets a day it never saw."""
    rows: list[Row] = []
    for i in range(len(grid.ts) - ahead):
        if grid.ts[i + ahead] >= end:
            break
        target = grid.y[i + ahead]
        if target is None or grid.y[i] is None:
            continue
        without = frozenset({grid.local[i].date(), grid.local[i + ahead].date()})

        def profile(local: dt.datetime, without: frozenset[dt.date] = without) -> float | None:
            return sums.value(local, without)

        f = _features(grid, profile, i)
        p_ahead = profile(grid.local[i + ahead])
        if f is None or p_ahead is None:
            continue
        rows.append((f[0], f[1], target - p_ahead, grid.local[i].hour))
    return rows


def _least_squares(rows: list[Row]) -> tuple[float, float]:
    """``a``, ``b`` of ``later = a * anomaly + b * trend`` (a 2x2 system)."""
    saa = sum(r[0] * r[0] for r in rows)
    sab = sum(r[0] * r[1] for r in rows)
    sbb = sum(r[1] * r[1] for r in rows)
    say = sum(r[0] * r[2] for r in rows)
    sby = sum(r[1] * r[2] for r in rows)
    det = saa * sbb - sab * sab
    if abs(det) > 1e-12:
        return (say * sbb - sby * sab) / det, (saa * sby - sab * say) / det
    if saa > 1e-12:
        return say / saa, 0.0
    return 1.0, 0.0


def fit(grid: Grid, calendar: Calendar, *, until: float | None = None) -> LotModel:
    """Fit the lot's model on its grid up to ``until`` (epoch; default: all of it)."""
    end = until if until is not None else (grid.ts[-1] + 1 if grid.ts else 0.0)
    per_day: dict[dt.date, int] = {}
    for t, local, y in zip(grid.ts, grid.local, grid.y, strict=True):
        if y is not None and t < end:
            per_day[local.date()] = per_day.get(local.date(), 0) + 1
    days = sum(1 for n in per_day.values() if n >= MIN_POINTS_PER_DAY)
    if days < MIN_DAYS:
        raise TooLittleHistory(f"{days} day(s) of history; a forecast needs {MIN_DAYS}", days=days)
    sums = ProfileSums(grid, calendar, until=end)
    profile = _profile(sums)
    fits: list[HorizonFit] = []
    for minutes in HORIZONS_MIN:
        rows = _held_out_rows(grid, sums, end, int(minutes * 60 / STEP_S))
        a, b = _least_squares(rows)
        residuals = [r[2] - a * r[0] - b * r[1] for r in rows]
        by_hour: list[list[float]] = [[] for _ in range(24)]
        for r, residual in zip(rows, residuals, strict=True):
            by_hour[r[3]].append(residual)
        fits.append(
            HorizonFit(
                minutes=minutes,
                a=a,
                b=b,
                low=_quantile(residuals, LOW_Q),
                high=_quantile(residuals, HIGH_Q),
                n=len(rows),
                hourly=tuple(
                    (_quantile(r, LOW_Q), _quantile(r, HIGH_Q)) if len(r) >= MIN_PER_HOUR else None
                    for r in by_hour
                ),
            )
        )
    return LotModel(
        capacity=grid.capacity, profile=profile, horizons=tuple(fits), days=days, trained_until=end
    )


@dataclass(frozen=True, slots=True)
class Point:
    minutes: int
    free: int
    low: int  # free bays: the interval's lower end (busier than expected)
    high: int
    basis: str  # "model" or "persistence" (no profile at that hour)


def _fractions(
    model: LotModel, local: dt.datetime, y: float, y_back: float | None
) -> list[tuple[HorizonFit, float, float, float, str]]:
    """Per horizon: (fit, occupancy, low, high as fractions, basis)."""
    p = model.profile.value(local)
    p_back = model.profile.value(local - dt.timedelta(seconds=TREND_S))
    trend = 0.0
    if y_back is not None and p is not None and p_back is not None:
        trend = (y - y_back) - (p - p_back)
    out: list[tuple[HorizonFit, float, float, float, str]] = []
    for h in model.horizons:
        p_ahead = model.profile.value(local + dt.timedelta(minutes=h.minutes))
        low, high = h.band(local.hour)
        if p is None or p_ahead is None:
            out.append((h, y, y + low, y + high, "persistence"))
        else:
            value = p_ahead + h.a * (y - p) + h.b * trend
            out.append((h, value, value + low, value + high, "model"))
    return out


def _clamp(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def predict(
    model: LotModel,
    *,
    local: dt.datetime,
    occupied: float,
    occupied_15min_ago: float | None,
    capacity: int | None = None,
) -> list[Point]:
    """Free bays at each horizon from ``local`` (the lot's wall time) and its counts now."""
    cap = capacity or model.capacity
    y = _clamp(occupied / cap)
    y_back = None if occupied_15min_ago is None else _clamp(occupied_15min_ago / cap)
    return [
        Point(
            minutes=h.minutes,
            free=round(cap - _clamp(value) * cap),
            low=round(cap - _clamp(high) * cap),
            high=round(cap - _clamp(low) * cap),
            basis=basis,
        )
        for h, value, low, high, basis in _fractions(model, local, y, y_back)
    ]


def predict_on_grid(
    model: LotModel, grid: Grid, i: int, minutes: int
) -> tuple[float, float, float] | None:
    """Occupied bays ``minutes`` after grid index ``i`` and the interval (bench)."""
    y = grid.y[i]
    if y is None:
        return None
    back = i - int(TREND_S / STEP_S)
    y_back = grid.y[back] if back >= 0 else None
    for h, value, low, high, _ in _fractions(model, grid.local[i], y, y_back):
        if h.minutes == minutes:
            cap = grid.capacity
            return _clamp(value) * cap, _clamp(low) * cap, _clamp(high) * cap
    return None
