"""Forecast accuracy: the lots' model against persistence and the seasonal naive forecast.

Run by ``make bench`` (``.venv/bin/python bench/forecast.py``), or on a real car park's
record with ``--csv FILE`` (columns ``lot_id,capacity,observed_at,occupied``; ISO 8601
times with their UTC offsets).

* Simulated: four weeks of Xigang from the town model (``simulators.history``: the hourly
  demand, dwell times, market days, weekends); the model trains on the first three weeks
  and is scored on the held-out fourth.
* ``--csv``: each lot's last 7 days are held out, the model trains on what comes before.

Scored on the same points for every method: an origin every 15 minutes of the held-out
period where the lot's count is known, and the true count 30 and 60 minutes later is known,
and the count a week before that target is known (for the seasonal naive). The model sees
only the counts up to its origin. MAE in bays of occupied (= of free) bays:

* model: ``central.forecast.model`` (profile + current anomaly, docs/forecast.md);
* persistence: the count at the origin ("it stays as it is");
* seasonal naive: the count at the same time a week before the target.

It also prints how often the truth fell inside the model's 10-90 % interval (stated: 80 %),
over all points and by the hour the forecast was made (night, morning peak, day, evening).

Goal: model / persistence <= 0.75 at 60 minutes and <= 0.9 at 30 minutes, and the model
beats the seasonal naive at both. Rows that cannot be read are counted and skipped; a lot
with too little history is reported and left out; the bench never crashes on a record.
It always exits 0: it reports, it does not gate.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from central.forecast.calendar import CalendarError, load_calendar
from central.forecast.model import (
    STEP_S,
    Calendar,
    Grid,
    Observation,
    TooLittleHistory,
    fit,
    predict_on_grid,
    prepare,
)
from simulators.history import lot_series, town_days
from site_model.site import load_site

ROOT = Path(__file__).resolve().parent.parent
HORIZONS = (30, 60)
GOALS = {60: 0.75, 30: 0.9}
ORIGIN_EVERY = 3  # grid steps: every 15 minutes
WEEK_S = 7 * 86400.0
STATED_COVERAGE = 0.8  # the 10th to 90th percentile
BLOCKS = {
    "00-06": (0, 6),
    "06-10": (6, 10),
    "10-16": (10, 16),
    "16-20": (16, 20),
    "20-24": (20, 24),
}
FIRST_DAY = dt.date(2026, 11, 2)  # a Monday: four weeks, no public holiday


@dataclass
class Scores:
    errors: dict[str, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    inside: dict[int, list[bool]] = field(default_factory=lambda: defaultdict(list))
    inside_by_block: dict[tuple[int, str], list[bool]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, method: str, minutes: int, error: float) -> None:
        self.errors[method][minutes].append(abs(error))

    def mae(self, method: str, minutes: int) -> float:
        values = self.errors[method][minutes]
        return sum(values) / len(values) if values else float("nan")

    def count(self, minutes: int) -> int:
        return len(self.errors["model"][minutes])


def block_of(hour: int) -> str:
    """The part of the day an origin falls in, for the interval's coverage by time of day."""
    return next(name for name, (first, end) in BLOCKS.items() if first <= hour < end)


def score_lot(grid: Grid, calendar: Calendar, split: float, scores: Scores) -> int:
    """Train on the grid before ``split``, score every origin after it; points scored."""
    model = fit(grid, calendar, until=split)
    scored = 0
    cap = grid.capacity
    for i in range(0, len(grid.ts)):
        if grid.ts[i] < split or i % ORIGIN_EVERY:
            continue
        now = grid.y[i]
        if now is None:
            continue
        for minutes in HORIZONS:
            j = i + int(minutes * 60 / STEP_S)
            if j >= len(grid.ts) or grid.y[j] is None:
                continue
            truth = grid.y[j] * cap  # type: ignore[operator]
            week_before = grid.at(grid.ts[j] - WEEK_S)
            predicted = predict_on_grid(model, grid, i, minutes)
            if week_before is None or predicted is None:
                continue
            value, low, high = predicted
            scores.add("model", minutes, value - truth)
            inside = low - 1e-9 <= truth <= high + 1e-9
            scores.inside[minutes].append(inside)
            scores.inside_by_block[minutes, block_of(grid.local[i].hour)].append(inside)
            scores.add("persistence", minutes, now * cap - truth)
            scores.add("seasonal", minutes, week_before * cap - truth)
            scored += 1
    return scored


def simulated(seed: int) -> tuple[dict[str, list[Observation]], dict[str, float], str]:
    site = load_site(ROOT / "sites" / "xigang.toml")
    tz = ZoneInfo(site.site.timezone)
    days = town_days(site, first_day=FIRST_DAY, days=28, seed=seed)
    series = lot_series(site, days)
    split = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=21), dt.time(0), tz).timestamp()
    observations = {
        lot_id: [
            Observation(
                at=dt.datetime.fromtimestamp(t, tz),
                occupied=count,
                capacity=len(site.lots[lot_id].bay_ids(lot_id)),
            )
            for t, count in points
        ]
        for lot_id, points in series.items()
    }
    return (
        observations,
        dict.fromkeys(observations, split),
        f"simulated town, 4 weeks (seed {seed})",
    )


def read_csv(path: Path) -> tuple[dict[str, list[Observation]], dict[str, float], str]:
    """Rows by lot; unreadable rows counted and skipped; each lot's last 7 days held out."""
    observations: dict[str, list[Observation]] = defaultdict(list)
    bad: dict[str, int] = defaultdict(int)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"lot_id", "capacity", "observed_at", "occupied"} - set(reader.fieldnames or [])
        if missing:
            print(f"{path}: missing columns {sorted(missing)}; nothing to score")
            return {}, {}, str(path)
        for n, row in enumerate(reader, start=2):
            try:
                at = dt.datetime.fromisoformat(
                    (row["observed_at"] or "").strip().replace("Z", "+00:00")
                )
                if at.tzinfo is None:
                    raise ValueError("no UTC offset")
                occupied = float(row["occupied"])
                capacity = int(float(row["capacity"] or 0))
                lot_id = (row["lot_id"] or "").strip()
                if not lot_id:
                    raise ValueError("no lot_id")
            except (ValueError, TypeError, KeyError) as exc:
                bad[type(exc).__name__ + (f": {exc}" if "offset" in str(exc) else "")] += 1
                if sum(bad.values()) <= 5:
                    print(f"  line {n}: skipped ({exc})")
                continue
            observations[lot_id].append(Observation(at=at, occupied=occupied, capacity=capacity))
    if bad:
        print(f"  {sum(bad.values())} row(s) skipped")
    splits = {
        lot_id: max(o.at.timestamp() for o in rows) - WEEK_S
        for lot_id, rows in observations.items()
    }
    return dict(observations), splits, str(path)


def _share(inside: list[bool]) -> str:
    return f"{100 * sum(inside) / len(inside):.1f} %" if inside else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, help="lot_id,capacity,observed_at,occupied")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument(
        "--holidays", type=Path, default=ROOT / "simulators" / "sites" / "holidays-cn.toml"
    )
    args = parser.parse_args(argv)
    try:
        calendar = load_calendar(args.holidays)
    except CalendarError as exc:
        print(f"holiday calendar not used: {exc}")
        calendar = Calendar()
    if args.csv is not None:
        observations, splits, what = read_csv(args.csv)
    else:
        observations, splits, what = simulated(args.seed)
    print(f"forecast bench: {what}")
    scores = Scores()
    for lot_id in sorted(observations):
        grid = prepare(observations[lot_id])
        dropped = ", ".join(f"{k} {v}" for k, v in grid.dropped.items() if v)
        try:
            points = score_lot(grid, calendar, splits[lot_id], scores)
        except TooLittleHistory as exc:
            print(f"  {lot_id}: not scored: {exc.detail}")
            continue
        print(
            f"  {lot_id}: capacity {grid.capacity}, {points} scored points"
            + (f" (cleaned: {dropped})" if dropped else "")
        )
    print(
        f"{'':14}{'model':>10}{'persistence':>13}{'seasonal':>10}{'points':>8}{'in 80% band':>13}"
    )
    for minutes in HORIZONS:
        share = _share(scores.inside[minutes])
        print(
            f"  MAE {minutes:>2} min {scores.mae('model', minutes):10.2f}"
            f"{scores.mae('persistence', minutes):13.2f}{scores.mae('seasonal', minutes):10.2f}"
            f"{scores.count(minutes):8d}{share:>13}"
        )
    print(
        "interval: truth inside the 10-90 % band "
        + ", ".join(f"{m} min {_share(scores.inside[m])}" for m in HORIZONS)
        + f" (stated {STATED_COVERAGE * 100:.0f} %)"
    )
    print(
        "interval by the hour asked (30 / 60 min): "
        + ", ".join(
            f"{name} {_share(scores.inside_by_block[30, name])} / "
            f"{_share(scores.inside_by_block[60, name])}"
            for name in BLOCKS
        )
    )
    parts = []
    ok = all(scores.count(m) > 0 for m in HORIZONS)
    beaten = ok
    for minutes in (60, 30):
        model, persistence = scores.mae("model", minutes), scores.mae("persistence", minutes)
        ratio = model / persistence if persistence > 0 else float("nan")  # nothing scored
        ok = ok and ratio <= GOALS[minutes]
        beaten = beaten and model < scores.mae("seasonal", minutes)
        parts.append(
            f"{minutes} min {model:.2f} (persistence {persistence:.2f}, ratio {ratio:.2f}; "
            f"goal <= {GOALS[minutes]})"
        )
    verdict = "PASS" if ok and beaten else "FAIL"
    said = "yes" if beaten else "no"
    print(f"forecast: MAE {parts[0]}, {parts[1]}, seasonal naive beaten: {said}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
