"""A county on two central processes behind the balancer (issue 17's "Done when").

    .venv/bin/python bench/county.py [--towns 50] [--seconds 60] [--clients 300] [--replay 200000]
    .venv/bin/python bench/county.py --towns 3 --seconds 20 --clients 30 --replay 20000  # quick

The county (``_county_site``): ``--towns`` copies of Xigang (50: 350 boxes, 31,000 bays):
a site file per town and a county file for ``serve --county``, or with ``--one-site`` every
town in ONE site file, each box's subscriptions and ACL scoped to its own town
(``scope_boxes_to_their_town``). The deployment
(``_county_rig``): the deploy broker configuration (TLS, a password and ACL block per
box), two ``central serve --ingest-group`` processes on a scratch PostgreSQL schema,
HAProxy with the deploy file.
The load (``_county_boxes``): every box is the real box uplink and outbox, emitting what a
box publishes for a car at its busy-hour rate (measured from the town simulation:
docs/scale.md) times 1 or 10. ``--clients`` SSE screens through the balancer
(``_county_screens``). Phases, each ``--seconds`` long:

1. **1x**: the busy-hour rate;
2. **replay**: still 1x, one box comes back with ``--replay`` buffered events; the other
   boxes' lag while it drains is the "live lag during the replay";
3. **kill**: still 1x, ``kill -9`` of one central process (its process group: the writer
   child too); time to full service: until the balancer answers, the survivor holds every
   lease and no event emitted more than 1 s before is waiting for its ack. The process is
   then started again (as systemd's ``Restart=always`` does) and the phase goes on at 1x
   (**restart**, a quarter of ``--seconds``, at least 15 s) while it catches up, before:
4. **10x**: ten times the rate; a bare subscriber (``_county_floor``) stores the same
   events with ``executemany`` meanwhile: the CPU floor.

Then every box must be acked to its last seq; the store is checked against what was
published (lost: a published seq not stored; duplicated: a (box, seq) stored twice), the
broker's drops are read from central's ``/metrics`` (its ``$SYS`` counters), and each
screen's view is compared with the database's lots. Ingest lag is the box's: from emit to
the ack that covers the event (read every 20 ms).
"""

from __future__ import annotations

import argparse
import collections
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _county_boxes import Link, box_worker, replay_worker  # noqa: E402
from _county_floor import create_table, floor_worker  # noqa: E402
from _county_rig import BOX_SECRET, CENTRAL_SECRET, County, pg_waits, wait_until  # noqa: E402
from _county_screens import SCREENS_PER_ADDRESS, queries, screens_worker  # noqa: E402
from _county_site import (  # noqa: E402
    box_plans,
    busy_hour,
    scope_boxes_to_their_town,
    write_county,
    write_county_file,
)

LEASES = ("cases-sweep", "acks-republish", "history-retention")


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def flat(lists: list[list[Any]]) -> list[Any]:
    return [x for part in lists for x in part]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def county_site(work: Path, towns: int, county: bool) -> tuple[Path, Any]:
    """The county central serves: a county file of town site files (``serve --county``),
    or the one-site stand-in (every town in one site file, boxes scoped to their town)."""
    if county:
        return write_county_file(work, towns)
    path = work / "county.toml"
    site = write_county(path, towns)
    scope_boxes_to_their_town(site)
    return path, site


def tokens_for(county: County, clients: int) -> list[str]:
    """A viewer per 8 screens (central's streams per token), each logged in directly."""
    from central.auth.models import Role
    from central.auth.service import add_user
    from central.db.engine import make_engine

    engine = make_engine(county.db_url)
    out = []
    for n in range(math.ceil(clients / 8)):
        add_user(engine, username=f"wall{n}", password=CENTRAL_SECRET, role=Role.VIEWER,
                 actor="bench")  # fmt: skip
        serve = county.pair[n % 2]
        resp = httpx.post(f"{serve.url}/api/v1/auth/login", timeout=60,
                          data={"username": f"wall{n}", "password": CENTRAL_SECRET})  # fmt: skip
        resp.raise_for_status()
        out.append(resp.json()["access_token"])
    engine.dispose()
    return out


class Workers:
    """Child processes, each with a command queue and an answer queue."""

    def __init__(self) -> None:
        self.procs: list[tuple[Any, Any, Any]] = []

    def start(self, target: Any, *args: Any) -> tuple[Any, Any]:
        ctl, out = mp.Queue(), mp.Queue()
        proc = mp.Process(target=target, args=(*args, ctl, out), daemon=True)
        proc.start()
        self.procs.append((proc, ctl, out))
        return ctl, out

    def stop(self) -> None:
        for proc, _, _ in self.procs:
            proc.terminate()
            proc.join(10)


def ask(queues: list[tuple[Any, Any]], cmd: tuple[Any, ...], timeout: float = 120) -> list[Any]:
    for ctl, _ in queues:
        ctl.put(cmd)
    return [out.get(timeout=timeout) for _, out in queues]


def store_check(db_url: str, published: dict[str, int]) -> tuple[int, int]:
    """(lost, duplicated): per box, seqs 1..last published that are not stored, and
    (box, seq) pairs stored more than once."""
    from sqlalchemy import text

    from central.db.engine import make_engine

    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT box_id, count(*), count(DISTINCT seq) FROM events GROUP BY box_id")
        ).all()
    engine.dispose()
    held = {box: (n, distinct) for box, n, distinct in rows}
    lost = sum(max(0, last - held.get(box, (0, 0))[1]) for box, last in published.items())
    dup = sum(n - distinct for n, distinct in held.values())
    return lost, dup


def db_lots(db_url: str) -> dict[str, int]:
    from sqlalchemy import text

    from central.db.engine import make_engine

    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT lot_id, free FROM lots WHERE free IS NOT NULL AND state_ts IS NOT NULL")
        ).all()
    engine.dispose()
    return {lot: int(free) for lot, free in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--towns", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="each phase")
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--replay", type=int, default=200_000)
    parser.add_argument("--box-procs", type=int, default=4)
    parser.add_argument(
        "--one-site",
        action="store_true",
        help="every town in one site file (the stand-in from before serve --county)",
    )
    parser.add_argument("--connects-per-s", type=float, default=10.0, help="boxes coming up")
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()
    from tests.central.test_processes_pg import holder

    busy = busy_hour()
    print(f"load before: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="parkgrid-county-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # the broker runs as its own user (when we are root)
        county_mode = not args.one_site
        site_file, site = county_site(work, args.towns, county_mode)
        plans = box_plans(site, busy)
        replay_plan = next(p for p in plans if p.box_id.endswith("box-p2"))
        live = [p for p in plans if p is not replay_plan]
        rate = sum(p.rate for p in live)
        print(
            f"county: {args.towns} towns, {len(site.boxes)} boxes, "
            f"{sum(1 for _ in site.lot_bays())} car-park bays; busy hour {busy.changes} bay "
            f"changes/h in Xigang ({busy.per_box_mean:.4f}/box/s) from {busy.starts_h:.2f} h; "
            f"1x = {rate:.2f} changes/s over {len(live)} live boxes (x3 messages)",
            flush=True,
        )
        workers = Workers()
        with County(work, site_file, site, county_mode) as county:
            try:
                return run(args, county, site, live, replay_plan, rate, work, workers, holder)
            finally:
                workers.stop()


def run(args, county, site, live, replay_plan, rate, work, workers, holder) -> int:  # type: ignore[no-untyped-def]
    (work / "box-password").write_text(BOX_SECRET)
    link = Link(site.id, county.broker.tls_url, county.broker.ca, work / "box-password",
                work / "boxes", per_town=county.county)  # fmt: skip
    create_table(libpq(county.db_url))
    tokens = tokens_for(county, args.clients)
    replay = workers.start(replay_worker, replay_plan, link, args.replay)
    spread = len(live) / args.connects_per_s
    boxes = [
        workers.start(box_worker, live[k :: args.box_procs], link, spread)
        for k in range(args.box_procs)
    ]
    for _, out in boxes:
        assert out.get(timeout=300)[0] == "ready"
    if wait_until(lambda: sum(ask(boxes, ("connected",))) == len(live), 300 + spread, 1.0) is None:
        raise SystemExit(f"boxes did not all connect: {sum(ask(boxes, ('connected',)))}")
    towns = sorted({lot.split("-", 1)[0] for lot in site.lots}) if county.county else None
    plan = queries(sorted(site.lots), args.clients, towns)
    screens = [
        workers.start(
            screens_worker,
            county.balancer.port,
            tokens,
            plan[k :: args.client_procs],
            2 + k * math.ceil(len(plan) / args.client_procs / SCREENS_PER_ADDRESS),
        )
        for k in range(args.client_procs)
    ]
    for _, out in screens:
        assert out.get(timeout=300) == "open"
    print(f"ready: {len(live)} boxes connected, {args.clients} screens open", flush=True)
    sse: dict[str, list[float]] = {}

    cpu_mark = {"at": time.monotonic(), "parts": county.cpu_parts(), "servers": county.server_cpu()}

    def phase(name: str, mult: float) -> None:
        ask(screens, ("take",))  # display lags from here on
        ask_all(boxes, ("rate", mult, name))
        cpu_used()
        print(f"phase {name}: {mult:g}x, {uptime()}", flush=True)

    def cpu_used() -> None:
        """Each central process's CPU share since the last call: where the time goes."""
        now, parts, servers = time.monotonic(), county.cpu_parts(), county.server_cpu()
        span = now - float(cpu_mark["at"])  # type: ignore[arg-type]
        shares = [
            f"{name} main {(own - cpu_mark['parts'][name][0]) / span:.0%} "  # type: ignore[index]
            f"writer {(kids - cpu_mark['parts'][name][1]) / span:.0%}"  # type: ignore[index]
            for name, (own, kids) in parts.items()
            if name in cpu_mark["parts"]  # type: ignore[operator]
        ]
        shares += [
            f"{name} {(used - cpu_mark['servers'][name]) / span:.0%}"  # type: ignore[index]
            for name, used in servers.items()
        ]
        print(f"  CPU over the last {span:.0f} s: {', '.join(shares)}", flush=True)
        cpu_mark.update(at=now, parts=parts, servers=servers)

    def ask_all(qs: list[tuple[Any, Any]], cmd: tuple[Any, ...]) -> None:
        for ctl, _ in qs:
            ctl.put(cmd)

    # 1. 1x
    phase("1x", 1)
    time.sleep(args.seconds)
    sse["1x"] = flat(ask(screens, ("take",)))
    # 2. the replay, at 1x
    assert replay[1].get(timeout=600)[0] == "ready"
    phase("replay", 1)
    replay[0].put(("go",))
    time.sleep(min(5.0, args.seconds / 4))
    print("  PostgreSQL sessions during the replay (samples | wait | statement):", flush=True)
    for n, what in pg_waits(county.db_url):
        print(f"    {n:>4} | {what}", flush=True)
    _, drain_s, replay_acked = replay[1].get(timeout=1900)
    sse["replay"] = flat(ask(screens, ("take",)))
    print(f"replay: {replay_acked} of {args.replay} acked in {drain_s:.1f} s", flush=True)
    # 3. kill -9 one process, at 1x
    phase("kill", 1)
    victim, survivor = county.pair
    county.cpu()
    killed, killed_wall = time.monotonic(), time.time()
    victim.proc.kill()

    def full_service() -> bool:
        oldest = [t for t in ask(boxes, ("oldest",)) if t is not None]
        if oldest and min(oldest) < time.time() - 1.0:
            return False
        return county.served() and all(holder(county.db_url, x) == survivor.name for x in LEASES)

    back = wait_until(full_service, 300, 0.25)
    recovered = time.monotonic() - killed if back is not None else math.inf
    print(f"kill -9 of central {victim.name}: full service after {recovered:.1f} s", flush=True)
    time.sleep(max(0.0, args.seconds / 2))
    sse["after kill"] = flat(ask(screens, ("take",)))
    cpu_used()
    victim.proc.start()  # systemd's Restart=always
    restarted = wait_until(lambda: county.balancer.status("c1") == "UP", 300, 0.5)
    print(f"central {victim.name} started again, UP after {restarted} s", flush=True)
    # Still 1x while it catches up (its session's retained states and births): what the
    # restart costs belongs to the kill, not to the 10x's lag and CPU per event.
    phase("restart", 1)
    time.sleep(max(15.0, args.seconds / 4))
    # 4. 10x, with the floor alongside
    floor = workers.start(
        floor_worker,
        libpq(county.db_url),
        county.broker.local_port,
        CENTRAL_SECRET,
        "+" if county.county else site.id,
    )
    assert floor[1].get(timeout=60) == "ready"
    time.sleep(1)
    sse["restart"] = flat(ask(screens, ("take",)))
    cpu_used()
    floor0, floor_cpu0 = ask([floor], ("report",))[0]
    cpu0, events0 = county.cpu(), stored_events(county.db_url)
    phase("10x", 10)
    time.sleep(args.seconds)
    ask_all(boxes, ("rate", 0, "drain"))
    wait_until(lambda: all(t is None for t in ask(boxes, ("oldest",))), 300, 0.5)
    cpu1, events1 = county.cpu(), stored_events(county.db_url)
    sse["10x"] = flat(ask(screens, ("take",)))
    cpu_used()
    time.sleep(1)
    floor1, floor_cpu1 = ask([floor], ("report",))[0]
    print(f"drained, {uptime()}", flush=True)
    return report(args, county, boxes, screens, sse, locals())


def libpq(url: str) -> str:
    """SQLAlchemy's URL (``postgresql+psycopg://``) as psycopg's own connect string."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def stored_events(db_url: str) -> int:
    from sqlalchemy import text

    from central.db.engine import make_engine

    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM events")).scalar() or 0)
    engine.dispose()
    return n


def report(args, county, boxes, screens, sse, m) -> int:  # type: ignore[no-untyped-def]
    reports = ask(boxes, ("report",))
    lags: dict[str, list[float]] = {}
    stranded = 0.0  # when the last event emitted after the kill and late by > 1 s was acked
    published: dict[str, int] = {}
    for r in reports:
        for name, values in r["lags"].items():
            lags.setdefault(name, []).extend(lag for _, lag in values)
            if name == "kill":
                late = [at + lag for at, lag in values if lag > 1.0 and at >= m["killed_wall"]]
                stranded = max([stranded, *late])
        published |= {box: last for box, (last, _) in r["boxes"].items()}
    published[m["replay_plan"].box_id] = args.replay
    unacked = sum(last - acked for r in reports for last, acked in r["boxes"].values())
    connects, resends = sum(r["connects"] for r in reports), sum(r["resends"] for r in reports)
    lost, dup = store_check(county.db_url, published)
    drops = county.metric(county.pair[1], "parkgrid_central_broker_dropped_messages_total")
    db = db_lots(county.db_url)
    views = flat(ask(screens, ("end", db, 30.0), timeout=180))
    diverged = sum(1 for v in views if not v["agrees"])
    for name in ("1x", "replay", "kill", "restart", "10x"):
        v = lags.get(name, [])
        print(f"  ingest lag {name:<7} p50 {pct(v, 50):.3f} s  p99 {pct(v, 99):.3f} s  "
              f"max {max(v, default=math.nan):.3f} s  ({len(v)} events)")  # fmt: skip
    for name in ("1x", "replay", "after kill", "restart", "10x"):
        v = sse.get(name, [])
        print(f"  SSE display lag {name:<10} p50 {pct(v, 50):.3f} s  p99 {pct(v, 99):.3f} s  "
              f"({len(v)} lot frames)")  # fmt: skip
    resyncs, reconnects = sum(v["resyncs"] for v in views), sum(v["reconnects"] for v in views)
    refused = sum(v["refused"] for v in views)
    causes: collections.Counter[str] = collections.Counter()
    for v in views:
        causes.update(v["causes"])
    print(f"  screens: {len(views)}, diverged from the database {diverged}, resyncs "
          f"{resyncs}, reconnects {reconnects}, refused {refused}")  # fmt: skip
    for cause, n in causes.most_common(8):
        print(f"    reconnects after {cause}: {n}")
    print(f"  store: {sum(published.values())} published, lost {lost}, duplicated {dup}, "
          f"unacked at the end {unacked}; broker drops ($SYS) {drops}; box sessions "
          f"{connects} for {len(published) - 1} live boxes, resends {resends}")  # fmt: skip
    events = m["events1"] - m["events0"]
    central = (m["cpu1"] - m["cpu0"]) * 1000 / max(1, events)
    floor_n = m["floor1"] - m["floor0"]
    floor = (m["floor_cpu1"] - m["floor_cpu0"]) * 1000 / max(1, floor_n)
    ratio = central / floor if floor else math.inf
    print(f"  CPU per 1,000 events at 10x: central {central:.2f} s ({events} events, both "
          f"processes and their writers), floor {floor:.2f} s ({floor_n} events): "
          f"{ratio:.1f} x")  # fmt: skip
    if m["restarted"] is None:  # systemd would try again; a start-up that fails is a defect
        print(f"  the killed central {m['victim'].name} did NOT come back after its restart "
              f"(see its log); the 10x phase ran on one process")  # fmt: skip
    after = f"acked {stranded - m['killed_wall']:.1f} s after it" if stranded else "none"
    print(f"  kill -9: full service after {m['recovered']:.1f} s (balancer, leases, nothing "
          f"waiting > 1 s); the last event sent after it and late by > 1 s: {after}")  # fmt: skip
    print(f"  replay drained in "
          f"{m['drain_s']:.1f} s ({m['replay_acked']} acked)")  # fmt: skip
    print(f"load after: {uptime()}")
    a, d = pct(lags.get("10x", []), 99), pct(lags.get("replay", []), 99)
    ok = a <= 1 and diverged == 0 and lost == 0 and d <= 1 and ratio <= 2
    ok = ok and m["restarted"] is not None
    print(f"county: lag p99 {a:.2f} s at 10x, SSE diverged {diverged}, lost {lost}, live p99 "
          f"during replay {d:.2f} s, CPU {ratio:.1f} x floor (goal <= 1, 0, 0, <= 1, <= 2): "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


MAIN = os.getpid()


def _terminated(signum: int, frame: object) -> None:
    if os.getpid() != MAIN:  # a worker told to stop
        os._exit(0)
    raise SystemExit(f"stopped by signal {signum}")  # so the rig's clean-up runs


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    signal.signal(signal.SIGTERM, _terminated)
    raise SystemExit(main())
