"""A day of Xigang: the town simulation, a pure plan of what happens when, and its drivers.

Theory of operation
-------------------
``plan_town(site, seed=..., start=..., hours=...)`` is pure: from the site file and a seed
it computes, once, every :data:`TownEvent` of the period, in simulated time (epoch seconds
of the town's clock), sorted. The same seed gives the same plan, byte for byte. What it
models:

* **car parks**: arrivals by hour of day per lot (overnight residents, a morning peak,
  market days at the farmers' market lot), dwell times, and drivers following the signs:
  a driver who finds a lot full goes to the lot its entrance sign points to (the sign's
  ``fallback`` list, nearest first) and leaves the town if every one is full;
* **stall zones**: vendors set up after the window opens and pack up before it closes;
  some are late, and stay past close and grace (at least one per closing, so the box's
  alert is always exercised);
* **no-parking segments**: illegal parkers captured by the segment's cameras every few
  minutes; some leave before the evidence rule (K captures over T minutes) is met;
* **the truck ban**: a big truck (yellow plate) entering at night, seen by an entry camera;
* **a car abandoned for days**, compressed: the captures of the previous days are posted in
  the first minutes, stamped with their own (earlier) times;
* **the fault script**: a sensor dies, a sign reboots, a box loses its network and gets it
  back (its outbox then replays).

:class:`TownTruth` replays the same plan to say what every bay holds at any time, and what
a lot should report (a dead sensor's bay is ``unknown``): the demo's end-of-run check.

This module is the planner and ``parkgrid sim town``; the rest of the town has a module
each, their names importable from here too: the events (``town_events.py``), the clock
(``town_clock.py``), which sensor lies in which bay (``town_sensors.py``) and the truth
(``town_truth.py``).

``simulators.town_driver.TownDriver`` turns events into the real interfaces: sensor frames on
pty lines (``ConcentratorSimulator``), sign reboots on the Modbus sign servers
(``SignSimulator``), captures posted to central (``simulators.cameras``), and network cuts
on a TCP relay between a box and the broker (``NetworkCut``). The plan never touches
them, so it is tested on its own.

::

    site file --plan_town(seed)--> [TownEvent ...] --TownDriver--> ptys, Modbus, HTTP, relay
                                          |
                                          +--TownTruth--> expected lot figures
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Mapping
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from simulators.sites import XIGANG
from simulators.town_clock import DAY, HOUR, MINUTE, TownClock, day_start, default_start
from simulators.town_events import (
    Arrival,
    BayChange,
    BoxNetwork,
    BoxRestarts,
    CaptureSeen,
    SensorDies,
    SignReboots,
    TownEvent,
    event_record,
    summarise,
)
from simulators.town_sensors import SensorPlan, sensor_plan
from simulators.town_truth import TownTruth
from site_model.site import SignKind, Site, load_site

__all__ = [
    "Arrival",
    "BayChange",
    "BoxNetwork",
    "BoxRestarts",
    "CaptureSeen",
    "SensorDies",
    "SensorPlan",
    "SignReboots",
    "TownClock",
    "TownEvent",
    "TownTruth",
    "day_start",
    "default_start",
    "event_record",
    "plan_town",
    "sensor_plan",
    "summarise",
]

# Arrivals per bay per hour, by hour of day (a small town: quiet nights, a morning peak
# from 7 to 9, a lunch bump, an evening peak). Invented, plausible.
HOURLY_RATE = (
    0.01, 0.01, 0.01, 0.01, 0.02, 0.06, 0.18, 0.42, 0.46, 0.30, 0.24, 0.26,
    0.30, 0.24, 0.22, 0.24, 0.28, 0.36, 0.34, 0.22, 0.14, 0.08, 0.04, 0.02,
)  # fmt: skip
MARKET_DAY_FACTOR = 1.6  # the farmers' market lot on market days
MARKET_LOT = "P1"
OVERNIGHT_SHARE = 0.12  # bays taken by residents' cars at night


# --- the plan -------------------------------------------------------------------------


def _hours(text: str, day0: float) -> tuple[float, float]:
    """'05:30-07:30' on the day starting at ``day0`` -> (open, close); close may be next day."""
    a, b = text.split("-")
    ha, ma = map(int, a.split(":"))
    hb, mb = map(int, b.split(":"))
    opens, closes = day0 + ha * HOUR + ma * MINUTE, day0 + hb * HOUR + mb * MINUTE
    if closes <= opens:
        closes += DAY
    return opens, closes


class _Planner:
    def __init__(
        self,
        site: Site,
        *,
        seed: int,
        start: float,
        end: float,
        market_day: bool,
        demand: Mapping[str, float],
        drivers: str = "planned",
        knows_town_share: float = 0.3,
    ):
        self.demand = demand
        self.drivers = drivers
        self.knows_town_share = knows_town_share
        self.site = site
        self.rng = random.Random(seed)
        self.start = start
        self.end = end
        self.market_day = market_day
        self.tz = ZoneInfo(site.site.timezone)
        local = datetime.fromtimestamp(start, self.tz)
        self.midnight = datetime.combine(local.date(), time(0), tzinfo=self.tz).timestamp()
        self.events: list[TownEvent] = []
        self.box_restarts = False
        self._plates: set[str] = set()
        self._event_n = 0

    # helpers

    def hour_of(self, t: float) -> int:
        return datetime.fromtimestamp(t, self.tz).hour

    def plate(self, colour: str = "blue") -> str:
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        while True:
            body = "".join(self.rng.choice(letters + "0123456789") for _ in range(4))
            prefix = "鲁D" if self.rng.random() < 0.85 else self.rng.choice(["鲁A", "苏C", "鲁Q"])
            tail = self.rng.choice("0123456789")
            plate = f"{prefix}{body}{tail}"
            if colour == "green":
                plate = f"{prefix}D{body}{tail}"
            if plate not in self._plates:
                self._plates.add(plate)
                return plate

    def event_id(self) -> str:
        self._event_n += 1
        return f"town-{self._event_n:06d}"

    def dwell(self, lot_id: str) -> float:
        mean = 50 * MINUTE if lot_id == MARKET_LOT else 95 * MINUTE
        return max(8 * MINUTE, self.rng.lognormvariate(math.log(mean), 0.7))

    # car parks

    def plan_lots(self) -> None:
        # free_at[bay] = when the bay is free again; a drivers' walk follows the signs.
        free_at: dict[str, float] = {}
        fallback: dict[str, list[str]] = {lot: [] for lot in self.site.lots}
        for sign in self.site.signs.values():
            if sign.kind is SignKind.GUIDANCE and sign.lot is not None:
                fallback[sign.lot] = [target.lot for target in sign.fallback]
        bays = {lot_id: lot.bay_ids(lot_id) for lot_id, lot in self.site.lots.items()}
        # Overnight cars already parked when the day starts (sent as the initial state).
        for ids in bays.values():
            for bay_id in ids:
                if self.rng.random() < OVERNIGHT_SHARE:
                    free_at[bay_id] = self.start + self.rng.uniform(1, 5) * HOUR
                    self.events.append(
                        BayChange(at=self.start, bay_id=bay_id, occupied=True, why="overnight")
                    )
                    self.events.append(
                        BayChange(at=free_at[bay_id], bay_id=bay_id, occupied=False, why="left")
                    )
        arrivals: list[tuple[float, str]] = []
        for lot_id, lot in self.site.lots.items():
            day0 = self.midnight
            opens, closes = _hours(lot.hours, day0) if lot.hours else (-math.inf, math.inf)
            t = self.start
            while t < self.end:
                rate = HOURLY_RATE[self.hour_of(t)] * len(bays[lot_id])
                if self.market_day and lot_id == MARKET_LOT:
                    rate *= MARKET_DAY_FACTOR
                rate *= self.demand.get(lot_id, 1.0)
                t += self.rng.expovariate(rate / HOUR)
                if t < self.end and opens <= t < closes - 30 * MINUTE:
                    arrivals.append((t, lot_id))
        arrivals.sort()
        if self.drivers == "signs":
            for n, (t, lot_id) in enumerate(arrivals, start=1):
                self.events.append(
                    Arrival(
                        at=t,
                        lot_id=lot_id,
                        dwell_s=self.dwell(lot_id),
                        knows_town=self.rng.random() < self.knows_town_share,
                        driver_id=n,
                    )
                )
            return
        for t, lot_id in arrivals:
            for target in [lot_id, *fallback[lot_id]]:
                free = [b for b in bays[target] if free_at.get(b, -math.inf) <= t]
                if free:
                    bay_id = self.rng.choice(free)
                    leave = t + self.dwell(target)
                    free_at[bay_id] = leave
                    why = "car" if target == lot_id else f"car from full {lot_id}"
                    self.events.append(BayChange(at=t, bay_id=bay_id, occupied=True, why=why))
                    self.events.append(
                        BayChange(at=leave, bay_id=bay_id, occupied=False, why="left")
                    )
                    break

    # stall zones

    def plan_zones(self) -> None:
        for zone_id, zone in self.site.zones.items():
            pitches = zone.bay_ids(zone_id)
            for day_offset in (-1, 0, 1):
                day0 = self.midnight + day_offset * DAY
                for window in zone.trading_hours:
                    opens, closes = _hours(window, day0)
                    if closes < self.start or opens > self.end:
                        continue
                    grace = zone.grace_min * MINUTE
                    used = self.rng.sample(pitches, k=max(1, int(len(pitches) * 0.75)))
                    late_one = self.rng.choice(used)
                    for pitch in used:
                        setup = opens + self.rng.uniform(0, 25) * MINUTE
                        late = pitch == late_one or self.rng.random() < 0.15
                        if late:
                            # Past close and grace: the box's alert, then the vendor goes.
                            leave = closes + grace + self.rng.uniform(3, 12) * MINUTE
                        else:
                            leave = closes - self.rng.uniform(0, 20) * MINUTE
                        why = "vendor late" if late else "vendor"
                        if setup < self.start <= leave:
                            setup = self.start
                        if setup >= self.start:
                            self.events.append(
                                BayChange(at=setup, bay_id=pitch, occupied=True, why=why)
                            )
                            self.events.append(
                                BayChange(at=leave, bay_id=pitch, occupied=False, why=why)
                            )

    # roads

    def cameras_of(self, *, segment: str | None = None, entry: str | None = None) -> list[str]:
        return [
            cam_id
            for cam_id, cam in self.site.cameras.items()
            if (segment is not None and cam.segment == segment)
            or (entry is not None and cam.entry == entry)
        ]

    def parked(self, *, at: float, stay: float, segment: str, why: str) -> None:
        """An illegal parker on ``segment``: a capture on arrival and every few minutes."""
        cameras = self.cameras_of(segment=segment)
        if not cameras:
            return
        camera = self.rng.choice(cameras)
        plate = self.plate()
        t = at
        while t <= at + stay and t < self.end:
            self.events.append(
                CaptureSeen(
                    at=t,
                    captured_at=t,
                    camera_id=camera,
                    plate=plate,
                    plate_colour="blue",
                    vehicle_class="car",
                    event_id=self.event_id(),
                    why=why,
                )
            )
            t += self.rng.uniform(2.5, 3.5) * MINUTE

    def plan_roads(self) -> None:
        capture_segments = [s for s, seg in self.site.segments.items() if seg.capture]
        if not capture_segments:
            return
        # One certain violation and one certain near miss early on, then a daytime rate.
        self.parked(at=self.start + 8 * MINUTE, stay=16 * MINUTE, segment=capture_segments[0],
                    why="illegal parker")  # fmt: skip
        self.parked(at=self.start + 12 * MINUTE, stay=3 * MINUTE, segment=capture_segments[-1],
                    why="illegal parker, left in time")  # fmt: skip
        t = self.start
        while True:
            t += self.rng.expovariate(3 / HOUR)
            if t >= self.end:
                break
            if not 6 <= self.hour_of(t) < 22:
                continue
            short = self.rng.random() < 0.4
            stay = self.rng.uniform(1, 4) * MINUTE if short else self.rng.uniform(8, 30) * MINUTE
            why = "illegal parker, left in time" if short else "illegal parker"
            self.parked(at=t, stay=stay, segment=self.rng.choice(capture_segments), why=why)

    def plan_truck(self) -> None:
        entries = sorted(self.site.entries)
        if not entries:
            return
        # At night: soon after the start when the day starts before dawn, else late evening.
        local = datetime.fromtimestamp(self.start, self.tz)
        at = self.start + 15 * MINUTE if local.hour < 5 else self.midnight + 22 * HOUR + 40 * MINUTE
        if at >= self.end:
            at = self.start + 15 * MINUTE
        entry = self.rng.choice(entries)
        cameras = self.cameras_of(entry=entry)
        if not cameras:
            return
        self.events.append(
            CaptureSeen(
                at=at,
                captured_at=at,
                camera_id=cameras[0],
                plate=self.plate("yellow"),
                plate_colour="yellow",
                vehicle_class="truck",
                event_id=self.event_id(),
                why="big truck entering at night",
            )
        )

    def plan_abandoned(self) -> None:
        capture_segments = [s for s, seg in self.site.segments.items() if seg.capture]
        if not capture_segments:
            return
        segment = capture_segments[len(capture_segments) // 2]
        cameras = self.cameras_of(segment=segment)
        if not cameras:
            return
        plate = self.plate()
        left = self.start - 2 * DAY - 3 * HOUR
        # Compressed: two days of daily patrol captures, posted in the first minutes.
        for n, captured in enumerate((left, left + DAY, left + 2 * DAY, self.start + MINUTE)):
            self.events.append(
                CaptureSeen(
                    at=self.start + (n + 1) * MINUTE,
                    captured_at=captured,
                    camera_id=cameras[0],
                    plate=plate,
                    plate_colour="blue",
                    vehicle_class="car",
                    event_id=self.event_id(),
                    why="car abandoned for days",
                )
            )

    # faults

    def fault_times(self) -> list[float]:
        """When the four faults strike: in the morning peak (07:10, 07:40, 08:05, 08:20) when
        the period holds it, the box restart in the evening peak (17:40) when it holds that,
        else 10, 25, 40 and 55 minutes after the start."""
        morning = [self.midnight + h * HOUR for h in (7 + 10 / 60, 7 + 40 / 60, 8 + 5 / 60)]
        restart = [self.midnight + (17 + 40 / 60) * HOUR, self.midnight + (8 + 20 / 60) * HOUR]
        if all(self.start <= t < self.end - 30 * MINUTE for t in morning):
            late = next((t for t in restart if self.start <= t < self.end - 30 * MINUTE), None)
            if late is not None:
                return [*morning, late]
        return [self.start + m * MINUTE for m in (10, 25, 40, 55)]

    def plan_faults(self, *, outage_s: float) -> None:
        dies, cut, reboot, restart = self.fault_times()
        lot_ids = sorted(self.site.lots)
        if len(lot_ids) >= 2:
            lot_id = lot_ids[1]
            bay_id = self.rng.choice(self.site.lots[lot_id].bay_ids(lot_id))
            self.events.append(SensorDies(at=dies, bay_id=bay_id))
        guidance = sorted(
            s for s, sign in self.site.signs.items() if sign.kind is SignKind.GUIDANCE
        )
        if guidance:
            self.events.append(SignReboots(at=reboot, sign_id=guidance[0]))
        if len(lot_ids) >= 3:
            box_id = self.site.lots[lot_ids[2]].box_id
            self.events.append(BoxNetwork(at=cut, box_id=box_id, up=False))
            self.events.append(BoxNetwork(at=cut + outage_s, box_id=box_id, up=True))
        if lot_ids and self.box_restarts:
            self.events.append(BoxRestarts(at=restart, box_id=self.site.lots[lot_ids[0]].box_id))


def _sort_key(event: TownEvent) -> tuple[float, int, str]:
    # Departures before arrivals at the same instant; then a stable order by kind and id.
    rank = 0 if isinstance(event, BayChange) and not event.occupied else 1
    return (event.at, rank, repr(event))


def plan_town(
    site: Site,
    *,
    seed: int,
    start: float,
    hours: float = 24.0,
    market_day: bool = True,
    outage_s: float = 60.0,
    demand: Mapping[str, float] | None = None,
    drivers: str = "planned",
    knows_town_share: float = 0.3,
    box_restarts: bool = False,
) -> list[TownEvent]:
    """Every event from ``start`` for ``hours`` simulated hours, sorted; pure and seeded.

    Args:
        start: epoch seconds of the town's clock when the plan begins (all bays free before).
        outage_s: how long (simulated seconds) the faulted box stays off the network.
        demand: per-lot factors on the arrival rate (a lot that draws more drivers).
        drivers: ``planned``: each arrival is a planned bay change, redirected by the truth
            when its lot is full; ``signs``: each arrival is an :class:`Arrival` that reads the
            lot's live sign when it happens (``simulators.town_outcomes``).
        knows_town_share: with ``signs``, the share of drivers who know the town.
        box_restarts: include the box restart in the fault script (the demo can do it).
    """
    if drivers not in ("planned", "signs"):
        raise ValueError(f"drivers must be 'planned' or 'signs', not {drivers!r}")
    end = start + hours * HOUR
    planner = _Planner(
        site,
        seed=seed,
        start=start,
        end=end,
        market_day=market_day,
        demand=demand or {},
        drivers=drivers,
        knows_town_share=knows_town_share,
    )
    planner.box_restarts = box_restarts
    planner.plan_lots()
    planner.plan_zones()
    planner.plan_roads()
    planner.plan_truck()
    planner.plan_abandoned()
    planner.plan_faults(outage_s=outage_s)
    return sorted((e for e in planner.events if start <= e.at < end), key=_sort_key)


# --- CLI ------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, default=XIGANG, help="the site file (Xigang)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="04:30", help="local time the day starts (HH:MM)")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    parser.add_argument(
        "--plan", action="store_true", help="print every event as JSON lines instead of a summary"
    )
    parser.epilog = (
        "Prints the plan of a day (pure, seeded). The whole town with its boxes, signs and "
        "cameras runs with `parkgrid demo`."
    )
    parser.set_defaults(handler=_cli)


def _cli(args: argparse.Namespace) -> int:
    from site_model.site import SiteError

    try:
        site = load_site(args.site)
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    events = plan_town(site, seed=args.seed, start=default_start(site, at=args.start),
                       hours=args.hours)  # fmt: skip
    if args.plan:
        for event in events:
            print(json.dumps(event_record(event), ensure_ascii=False))
        return 0
    truth = TownTruth(site=site).apply_all(events)
    report = {"events": len(events), "by_kind": summarise(events)}
    report["lots_at_end"] = truth.lot_figures()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
