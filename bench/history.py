"""History from rollups: server time of history, heat and dwell over a year of one town and
the county overview over a quarter of the county, on PostgreSQL (issue 17, finding 6).

    .venv/bin/python bench/history.py [--pg-url URL] [--days 365] [--towns 50]
                                      [--county-days 92] [--runs 5] [--seed 17]

Makes a scratch database on the machine's PostgreSQL (``parkgrid_bench_history_<pid>``,
dropped at the end), migrates it (events partitioned by month) and loads, with ``COPY``:

* a year of Xigang (``sites/xigang.toml``, 620 lot bays): every bay change the town model
  (``simulators.history.town_days``, the demo's) makes, as ``events`` rows with the real
  uplink payload of each (checked against ``encode_payload``), and the rollups the ingest
  would have filed for them (``central.history.chain.walk``, the ingest's own rule);
* the county: ``--towns`` towns of Xigang's size, each the town's rollups of the last
  ``--county-days`` days under its own lot and bay ids (multi-town central does not exist
  yet: this is the query its overview would make over the towns' rollups, one database).

Then times, in this process and on the loaded database (the median of ``--runs``), what
the endpoints run (``central.lots.service``): **history** of the busiest lot for a week, a
month (30 days), a quarter (92 days) and a year, each at about 672 points (the dashboard
draws a week at 15 minutes; a longer range at a coarser whole-minute step, the same
number of points), **heat** (the heat map's hourly samples over the range, 17.3 s off the
minute as the dashboard asks from "now"), **dwell** over the range, and the **county
overview**: every lot's counts at each quarter hour of the last day
(``central.history.read.lots_at``). Size: the town's raw events (every partition) and its
rollups, by ``pg_total_relation_size``, scaled to a year.

Goals: history of a year within 2x a week's; county overview <= 0.5 s; raw + rollups <=
1.5 GB per town-year, with raw events kept ``--raw-keep-days`` (92: a quarter, plus the
month retention waits for) and rollups for the whole year (the figure keeping every raw
event is printed too). The last line reads ``history: year/week X, county overview Y s,
raw+rollups Z GB per town-year (goal <= 2, <= 0.5, <= 1.5): PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, create_engine, text  # noqa: E402

from central.db.engine import make_engine, normalise_url  # noqa: E402
from central.db.migrate import upgrade  # noqa: E402
from central.history import partitions, read  # noqa: E402
from central.history.chain import HOUR, MINUTE, STATES, Change, Contribution, Tip, walk  # noqa: E402
from central.lots import service  # noqa: E402
from central.sites.service import sync_site  # noqa: E402
from simulators.history import bay_changes, town_days  # noqa: E402
from site_model.site import Site, load_site  # noqa: E402

UTC = dt.UTC
BOOT = "6f0c2b1e-0d1f-4a55-9b7e-0c2a3d4e5f60"
EVENT_COLUMNS = (
    "box_id",
    "seq",
    "boot_id",
    "event_id",
    "kind",
    "ts",
    "received_at",
    "historical",
    "lot_id",
    "zone_id",
    "bay_id",
    "to_state",
    "payload",
    "prev_state",
)
RANGES = (("week", 7), ("month", 30), ("quarter", 92), ("year", 365))
POINTS = 672


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def payload(
    box: str, seq: int, event_id: str, ts: float, bay: str, lot: str, frm: str, to: str
) -> str:
    """The uplink v1 bytes of a bay change (``encode_payload``'s, checked in ``check_payloads``)."""
    at = iso(ts)
    return (
        f'{{"v":1,"box_id":"{box}","boot_id":"{BOOT}","seq":{seq},"event_id":"{event_id}",'
        f'"ts":"{at}","historical":false,"body":{{"kind":"bay_changed","bay_id":"{bay}",'
        f'"lot_id":"{lot}","zone_id":null,"from_state":"{frm}","to_state":"{to}",'
        f'"sensor_id":null,"sensor_ts":"{at}"}}}}'
    )


def check_payloads(rows: list[tuple[Any, ...]]) -> None:
    from firmware_protocols.uplink import BayChanged, Event, encode_payload
    from firmware_protocols.uplink.models import BayOccupancy

    for row in rows:
        box, seq, boot, event_id, _, ts, _, _, lot, _, bay, to, data, prev = row
        when = dt.datetime.fromtimestamp(ts, UTC)
        event = Event(
            box_id=box,
            boot_id=uuid.UUID(boot),
            seq=seq,
            event_id=uuid.UUID(event_id),
            ts=when,
            body=BayChanged(
                bay_id=bay,
                lot_id=lot,
                from_state=BayOccupancy(prev if prev != "unknown" else "free"),
                to_state=BayOccupancy(to),
                sensor_ts=when,
            ),
        )
        if prev == "unknown":
            continue  # the box's first change of a bay says "free" before it; central knew none
        if encode_payload(event).decode() != data:
            raise SystemExit(
                f"payload differs from the codec's:\n{data}\n{encode_payload(event)!r}"
            )


def town_year(
    site: Site, first: dt.date, days: int, seed: int
) -> tuple[list[tuple[Any, ...]], Contribution, dict[str, Tip]]:
    """The year's ``events`` rows and the rollups the ingest would have filed for them."""
    lot_of = {bay: lot for lot, bay in site.lot_bays()}
    box_of = {lot: site.lots[lot].box_id for lot in site.lots}
    by_bay: dict[str, list[Change]] = {}
    rows: list[tuple[Any, ...]] = []
    seqs: dict[str, int] = {}
    state: dict[str, str] = {}
    for at, bay, occupied in bay_changes(town_days(site, first_day=first, days=days, seed=seed)):
        to = "occupied" if occupied else "free"
        if state.get(bay) == to:
            continue  # not a change
        at = dt.datetime.fromtimestamp(at, UTC).timestamp()  # microseconds, as the wire has it
        lot = lot_of[bay]
        box = box_of[lot]
        seq = seqs[box] = seqs.get(box, 0) + 1
        prev = state.get(bay, "unknown")
        state[bay] = to
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench:{box}:{seq}"))
        frm = "free" if prev == "unknown" else prev
        rows.append(
            (
                box,
                seq,
                BOOT,
                event_id,
                "bay_changed",
                at,
                at + 0.4,
                False,
                lot,
                None,
                bay,
                to,
                payload(box, seq, event_id, at, bay, lot, frm, to),
                prev,
            )
        )
        by_bay.setdefault(bay, []).append(Change(at, seq, box, lot, to, True))
    total = Contribution()
    tips: dict[str, Tip] = {}
    for bay, changes in by_bay.items():
        tip = Tip()
        made = walk(bay, tip, changes)
        total.add(made)
        total.stays |= made.stays
        tips[bay] = tip
    return rows, total, tips


def copy(
    engine: Engine,
    table: str,
    columns: tuple[str, ...],
    rows: Iterator[tuple[Any, ...]] | list[Any],
) -> int:
    raw = engine.raw_connection()
    n = 0
    try:
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:  # type: ignore[attr-defined]
            for row in rows:
                cp.write_row(row)
                n += 1
        raw.commit()
    finally:
        raw.close()
    return n


def load_rollups(
    engine: Engine,
    made: Contribution,
    tips: dict[str, Tip],
    rename: Callable[[str], str],
    since: float = float("-inf"),
) -> int:
    n = 0
    for table, key, width, deltas in (
        ("lot_minutes", "minute", MINUTE, made.minutes),
        ("lot_hours", "hour", HOUR, made.hours),
    ):
        n += copy(
            engine,
            table,
            ("lot_id", key, *STATES),
            (
                (rename(lot), k, *values)
                for (lot, k), values in deltas.items()
                if any(values) and k * width > since
            ),
        )
    n += copy(
        engine,
        "bay_stays",
        ("bay_id", "ended", "seq", "lot_id", "began"),
        (
            (rename(s.bay_id), s.ended, s.seq, rename(s.lot_id or ""), s.began)
            for s in made.stays
            if s.ended > since
        ),
    )
    n += copy(
        engine,
        "bay_tips",
        ("bay_id", "lot_id", "ts", "seq", "state", "run_began"),
        (
            (rename(bay), rename(tip.lot_id or ""), tip.ts, tip.seq, tip.state, tip.run_began)
            for bay, tip in tips.items()
        ),
    )
    return n


def timed(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm: plans, caches
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def relation_bytes(engine: Engine, names: list[str]) -> int:
    with engine.connect() as conn:
        return sum(
            int(
                conn.execute(
                    text("SELECT pg_total_relation_size(to_regclass(:n))"), {"n": n}
                ).scalar()
                or 0
            )
            for n in names
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "PARKGRID_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--towns", type=int, default=50)
    ap.add_argument("--county-days", type=int, default=92)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument(
        "--raw-keep-days",
        type=float,
        default=92,
        help="RAW_EVENTS_KEEP_DAYS the size goal assumes (raw held: this plus up to a month)",
    )
    args = ap.parse_args()
    if args.days < 7:
        ap.error("--days must be at least 7 (a week)")
    base = normalise_url(args.pg_url)
    name = f"parkgrid_bench_history_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        return run(engine, args)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def run(engine: Engine, args: argparse.Namespace) -> int:
    site = load_site(REPO / "sites" / "xigang.toml")
    upgrade(engine)
    sync_site(engine, site)
    today = dt.datetime.now(UTC).date()
    first = today - dt.timedelta(days=args.days)
    now = dt.datetime.now(UTC)
    print(f"history bench: {now:%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}")
    print(f"  a year: {args.days} days of Xigang from {first}")
    print(f"  county: {args.towns} towns x {args.county_days} days")
    t0 = time.perf_counter()
    rows, made, tips = town_year(site, first, args.days, args.seed)
    check_payloads(rows[:: max(1, len(rows) // 300)])
    took = time.perf_counter() - t0
    print(f"  generated {len(rows):,} bay changes, {len(made.stays):,} stays ({took:.0f} s)")
    with engine.begin() as conn:
        day = first
        while day <= today + dt.timedelta(days=62):
            partitions.ensure_month(conn, day.year, day.month)
            day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    t0 = time.perf_counter()
    copy(engine, "events", EVENT_COLUMNS, rows)
    n = load_rollups(engine, made, tips, lambda s: s)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    print(f"  COPY: {len(rows):,} events, {n:,} rollup rows ({time.perf_counter() - t0:.0f} s)")
    with engine.connect() as conn:
        parts = [*partitions.months(conn).values(), partitions.DEFAULT]
    raw = relation_bytes(engine, parts)
    rollup = relation_bytes(engine, ["lot_minutes", "lot_hours", "bay_stays", "bay_tips"])
    raw_day, rollup_day = raw / args.days, rollup / args.days
    held = min(365.0, args.raw_keep_days + 31)  # a month ends before its rows go
    per_year = (raw_day * held + rollup_day * 365) / 1e9
    every = (raw_day + rollup_day) * 365 / 1e9
    print(f"  size: raw events {raw / 1e9:.2f} GB ({raw / len(rows):.0f} B a change)")
    print(f"        rollups {rollup / 1e9:.3f} GB; per town-year {every:.2f} GB keeping every")
    print(f"        raw event, {per_year:.2f} GB with RAW_EVENTS_KEEP_DAYS={args.raw_keep_days:g}")
    print(f"        ({held:.0f} days of raw events held)")

    lot = max(site.lots, key=lambda k: len(site.lots[k].bay_ids(k)))
    end = dt.datetime.combine(today, dt.time(), UTC)
    figures: dict[str, dict[str, float]] = {}
    for label, days in RANGES:
        if days > args.days:
            continue
        start = end - dt.timedelta(days=days)
        step = max(900, round(days * 86400 / POINTS / 900) * 900)
        off = dt.timedelta(seconds=17.3)  # the heat map asks from "now"

        def history(s: dt.datetime = start, st: int = step) -> Any:
            return service.occupancy_history(engine, lot_id=lot, start=s, end=end, step_s=st)

        def heat(s: dt.datetime = start, o: dt.timedelta = off) -> Any:
            return service.occupancy_history(
                engine, lot_id=lot, start=s + o, end=end + o, step_s=3600
            )

        def dwell(s: dt.datetime = start) -> Any:
            return service.dwell_stats(engine, lot_id=lot, start=s, end=end)

        f = figures[label] = {
            "history": timed(history, args.runs),
            "heat": timed(heat, args.runs),
            "dwell": timed(dwell, args.runs),
        }
        print(
            f"  {label:8} {lot}: history {f['history'] * 1000:7.1f} ms ({step} s steps)"
            f"   heat {f['heat'] * 1000:7.1f} ms ({days * 24} hours)"
            f"   dwell {f['dwell'] * 1000:7.1f} ms"
        )

    # The county: each town Xigang's rollups of the last county-days under its own ids:
    # the first town by COPY, the others copied from it in the server.
    since = (end - dt.timedelta(days=args.county_days)).timestamp()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        bays = conn.execute(
            text("SELECT bay_id, lot_id, box_id FROM bays WHERE lot_id IS NOT NULL")
        ).all()
        lots = conn.execute(text("SELECT lot_id, name, box_id, capacity FROM lots")).all()
    quarter = Contribution(
        minutes={k: v for k, v in made.minutes.items() if k[1] * MINUTE > since},
        hours={k: v for k, v in made.hours.items() if k[1] * HOUR > since},
        stays={s for s in made.stays if s.ended > since},
    )
    first = "T01-"
    copy(
        engine,
        "lots",
        ("lot_id", "name", "box_id", "capacity"),
        [(first + r[0], r[1], first + r[2], r[3]) for r in lots],
    )
    copy(
        engine,
        "bays",
        ("bay_id", "lot_id", "box_id"),
        [(first + r[0], first + r[1], first + r[2]) for r in bays],
    )
    load_rollups(engine, quarter, tips, lambda s: first + s if s else s)
    others = "CROSS JOIN generate_series(2, :towns) n WHERE {} LIKE 'T01-%'"
    ids = "format('T%s-', lpad(n::text, 2, '0')) || substr({}, 5)"
    copies = {
        "lots": ("lot_id, name, box_id, capacity", "{lot_id}, name, {box_id}, capacity"),
        "bays": ("bay_id, lot_id, box_id", "{bay_id}, {lot_id}, {box_id}"),
        "lot_minutes": ("lot_id, minute, free, occupied, unknown, closed",
                        "{lot_id}, minute, free, occupied, unknown, closed"),
        "lot_hours": ("lot_id, hour, free, occupied, unknown, closed",
                      "{lot_id}, hour, free, occupied, unknown, closed"),
        "bay_stays": ("bay_id, ended, seq, lot_id, began", "{bay_id}, ended, seq, {lot_id}, began"),
        "bay_tips": ("bay_id, lot_id, ts, seq, state, run_began",
                     "{bay_id}, {lot_id}, ts, seq, state, run_began"),
    }  # fmt: skip
    county = 0
    with engine.begin() as conn:
        for table, (columns, exprs) in copies.items():
            key = columns.split(",")[0]
            select_list = exprs.format(**{c: ids.format(c) for c in ("lot_id", "bay_id", "box_id")})
            sql = f"INSERT INTO {table} ({columns}) SELECT {select_list} FROM {table} "
            county += conn.execute(text(sql + others.format(key)), {"towns": args.towns}).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    took = time.perf_counter() - t0
    print(f"  county: {args.towns} towns, {args.towns * len(bays):,} bays, {county:,} rows copied")
    print(f"          loaded in {took:.0f} s")
    day = int((end - dt.timedelta(days=1)).timestamp())

    def overview() -> None:
        with engine.connect() as conn:
            got = read.lots_at(conn, day, 900, 97)
        assert len(got) == (args.towns + 1) * len(site.lots), len(got)

    over = timed(overview, args.runs)
    lots_n = (args.towns + 1) * len(site.lots)
    print(f"  county overview: {lots_n} lots x 97 quarter hours: {over * 1000:.0f} ms")

    year = figures.get("year", figures[max(figures, key=lambda k: dict(RANGES)[k])])
    ratio = year["history"] / figures["week"]["history"]
    for kind in ("heat", "dwell"):
        print(f"  {kind}: year/week {year[kind] / figures['week'][kind]:.1f}")
    ok = ratio <= 2 and over <= 0.5 and per_year <= 1.5
    print(
        f"history: year/week {ratio:.2f}, county overview {over:.3f} s, "
        f"raw+rollups {per_year:.2f} GB per town-year "
        f"(goal <= 2, <= 0.5, <= 1.5): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
