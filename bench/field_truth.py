"""Field truth: how much of the time each sign, and the public API, tells drivers the truth.

    .venv/bin/python bench/field_truth.py [--speed 60] [--start 06:00] [--duration 330]
                                         [--demand 1.6] [--seed 7] [--day] [--run-dir DIR]
    .venv/bin/python bench/field_truth.py --analyse DIR    # a run folder of parkgrid demo

Runs the whole town with ``parkgrid demo`` (mosquitto, central, seven boxes, sensor and sign
simulators, seeded): a demand that fills the lots at the peaks, drivers who read the live
signs (a share know the town), and the fault script in the peaks (a sensor dies, a box loses
its network, a sign reboots, a box restarts). While it runs, ``GET /api/v1/lots`` is polled
at 4 Hz. Then it compares, on the wall clock:

* the truth: the town's truth timeline (``truth-timeline.jsonl``): each lot's free bays
  after every change, a bay with a dead sensor counted unknown, never free; a lot is full
  when that count is 0 (every lot's full band is 0 in xigang);
* what each guidance sign showed: the sign simulators' display logs (every change of the
  LEDs, with its time, the watchdog's expiry included);
* what the API said: the polled ``free`` and ``status`` per lot.

A sign is *right* at a moment when its face matches the truth of some moment in the 2 s
before (a count equal to the free bays while there is space; the words for full while the
lot is full). ``--`` and a dark sign are never right (the truth is always known to the town).
The API is right when ``free`` matches and ``status`` is ``full`` exactly when the lot is,
and the lot is not ``stale``; while the lot's box cannot be heard (its network cut, or its
process stopped by the restart, to 2 s after it is back) central cannot know the lot, and
the right answer is the availability rule's: ``stale`` (its last figure, true when the box
was last heard, with its age) or ``unknown`` (no free bay claimed), never a figure presented
as current. Stale or
unknown at any other time is wrong (docs/field-truth.md).
Lag: for each change of the truth, how long until the sign showed it (changes overtaken by
the next one within 2 s are not counted). The drivers' outcomes come from the timeline:
*misled* are drivers a sign sent to a lot with no free bay (a count at a full lot, or a way
to a full lot) when what they read matched no truth of the 2 s before; *turned away* are
drivers a full sign sent on while their lot had space (split the same way).

Goals: signs right within 2 s at least 99.9 % of the time, the API at least 99.5 %, no driver
misled. The last line is the verdict. Without ``--day`` the run covers 06:00 to 11:30 of the
town (the morning peak and every fault) at 60x, about six minutes; ``--day`` runs 24 hours.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOLERANCE_S = 2.0
GOAL_SIGNS = 99.9
GOAL_API = 99.5
POLL_HZ = 4.0
STEP_S = 0.05  # sampling step of the comparison, wall seconds
WARM_UP_S = 5.0  # after the first event, before the comparison starts
API_FIELDS = ("id", "free", "status", "stale", "availability", "age_s")


# --- reading the run folder ------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


@dataclass
class Series:
    """A value that changes at given times (a step function)."""

    times: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def add(self, at: float, value: Any) -> None:
        if self.values and self.values[-1] == value:
            return
        self.times.append(at)
        self.values.append(value)

    def at(self, t: float) -> Any:
        i = bisect.bisect_right(self.times, t) - 1
        return self.values[i] if i >= 0 else None

    def within(self, t0: float, t1: float) -> list[Any]:
        """Every value the series held at some moment in [t0, t1]."""
        i = max(0, bisect.bisect_right(self.times, t0) - 1)
        j = bisect.bisect_right(self.times, t1)
        return self.values[i:j]


def face_of(text: str) -> tuple[str, int | None]:
    """A guidance sign's words as (kind, count): count, full, unknown, dark, closed."""
    if text == "":
        return "dark", None
    if text.startswith("--"):
        return "unknown", None
    if text.startswith("满") or text.startswith("FULL"):
        return "full", None
    if text.startswith("CLOSED"):
        return "closed", None
    parts = text.split()
    for part in parts[1:2] + parts[:1]:
        if part.isdigit():
            return "count", int(part)
    return "unknown", None


def expected_face(free: int, band: int = 0) -> tuple[str, int | None]:
    return ("full", None) if free <= band else ("count", free)


@dataclass
class Run:
    lots: list[str]
    entrance: dict[str, str]  # lot -> its guidance sign
    truth: dict[str, Series]  # lot -> free (unknown not free)
    signs: dict[str, Series]  # lot -> face of its entrance sign
    api: dict[str, list[tuple[float, int, str, bool]]]  # lot -> (wall, free, status, stale)
    faults: list[tuple[float, str]]
    cut_off: dict[str, list[tuple[float, float]]]  # lot -> its box's network cuts (wall)
    drivers: list[dict[str, Any]]
    start: float
    end: float


def load_run(run_dir: Path) -> Run:
    from site_model.site import SignKind, load_site

    state = json.loads((run_dir / "demo.json").read_text())
    site = load_site(Path(state["site_file"]))
    lots = sorted(site.lots)
    entrance = {}
    for sign_id, sign in sorted(site.signs.items()):
        if sign.kind is SignKind.GUIDANCE and sign.lot is not None:
            entrance.setdefault(sign.lot, sign_id)
    truth = {lot: Series() for lot in lots}
    faults: list[tuple[float, str]] = []
    cut_off: dict[str, list[tuple[float, float]]] = {lot: [] for lot in lots}
    drivers: list[dict[str, Any]] = []
    timeline = read_jsonl(run_dir / "truth-timeline.jsonl")
    for record in timeline:
        if "truth" in record and record.get("lot") in truth:
            figures = record["truth"]
            truth[record["lot"]].add(record["wall"], figures["free"])
        if record["kind"] == "fault":
            what = record["fault"]
            subject = record.get("sign_id") or record.get("box_id") or record.get("bay_id")
            if record["fault"] == "BoxNetwork":
                what = "network back" if record.get("up") else "network cut"
            if record["fault"] in ("BoxNetwork", "BoxRestarts", "BoxStarted"):
                # The box cannot be heard from its network cut (or its process stopping for
                # a restart) until the network is back (its process runs again).
                gone = record["fault"] == "BoxRestarts" or record.get("up") is False
                for lot in site.lots_of_box(record["box_id"]):
                    cuts = cut_off[lot]
                    if gone:
                        cuts.append((record["wall"], float("inf")))
                    elif cuts and cuts[-1][1] == float("inf"):
                        cuts[-1] = (cuts[-1][0], record["wall"])
            faults.append((record["wall"], f"{what} {subject}"))
        elif record["kind"] == "driver":
            drivers.append(record)
    by_sign = {sign_id: lot for lot, sign_id in entrance.items()}
    signs = {lot: Series() for lot in lots}
    for log in sorted((run_dir / "signs").glob("*-display.jsonl")):
        for record in read_jsonl(log):
            lot = by_sign.get(record["sign"])
            if lot is not None:
                signs[lot].add(record["wall"], face_of(record["shown"]))
    api: dict[str, list[tuple[float, int, str, bool]]] = {lot: [] for lot in lots}
    for record in read_jsonl(run_dir / "api-poll.jsonl"):
        for lot in record["lots"]:
            if lot["id"] in api:
                api[lot["id"]].append(
                    (record["wall"], lot["free"], lot["status"], bool(lot.get("stale")))
                )
    restarts = [at for at, name in faults if name.startswith("BoxRestarts")]
    for lot, cuts in cut_off.items():  # a restart with no BoxStarted (an older run): no window
        cut_off[lot] = [c for c in cuts if not (c[1] == float("inf") and c[0] in restarts)]
    # From the town's first event on, after a warm-up: at the start every box hears all its
    # sensors' first frames at once (620 bays); that is the boxes' start, not a fault.
    first = timeline[0]["wall"] if timeline else 0.0
    start = max(float(state.get("wall_start") or first), first) + WARM_UP_S
    # Up to the town's last event: after it the demo stops (boxes first), which is no fault.
    end = timeline[-1]["wall"] if timeline else start
    return Run(lots, entrance, truth, signs, api, faults, cut_off, drivers, start, end)


# --- the comparison ----------------------------------------------------------------------


@dataclass
class Episode:
    start: float
    end: float
    shown: Any
    truth: int

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass
class LotResult:
    lot: str
    seconds: float
    right_s: float
    space_in_full_s: float
    lags: list[float]
    episodes: list[Episode]
    api_samples: int
    api_right: int
    api_cut_off: int  # samples while the box was cut off, said stale or unknown: right

    @property
    def share(self) -> float:
        return 100.0 * self.right_s / self.seconds if self.seconds else 0.0

    @property
    def api_share(self) -> float:
        return 100.0 * self.api_right / self.api_samples if self.api_samples else 0.0


def _sample_times(start: float, end: float) -> Iterable[float]:
    n = int((end - start) / STEP_S)
    return (start + i * STEP_S for i in range(n))


def compare_lot(run: Run, lot: str) -> LotResult:
    truth, sign = run.truth[lot], run.signs[lot]
    right_s = space_in_full = 0.0
    seconds = 0.0
    episodes: list[Episode] = []
    open_episode: Episode | None = None
    for t in _sample_times(run.start, run.end):
        seconds += STEP_S
        shown = sign.at(t)
        free = truth.at(t)
        if free is None:
            continue
        candidates = {expected_face(f) for f in truth.within(t - TOLERANCE_S, t)}
        ok = shown in candidates
        if ok:
            right_s += STEP_S
        if shown is not None and shown[0] == "count" and (shown[1] or 0) > 0 and free == 0:
            space_in_full += STEP_S
        if not ok:
            if open_episode is None:
                open_episode = Episode(t, t + STEP_S, shown, free)
                episodes.append(open_episode)
            else:
                open_episode.end = t + STEP_S
        else:
            open_episode = None
    lags = []
    for i, changed in enumerate(truth.times):
        if changed < run.start:
            continue
        want = expected_face(truth.values[i])
        nxt = truth.times[i + 1] if i + 1 < len(truth.times) else run.end
        if nxt - changed < TOLERANCE_S:
            continue  # overtaken by the next change before a sign could be judged
        j = bisect.bisect_left(sign.times, changed)
        if sign.at(changed) == want:
            lags.append(0.0)
            continue
        while j < len(sign.times) and sign.times[j] < nxt:
            if sign.values[j] == want:
                lags.append(sign.times[j] - changed)
                break
            j += 1
    samples = [s for s in run.api[lot] if run.start <= s[0] <= run.end]
    api_right = api_cut_off = 0
    for wall, free_api, status, stale in samples:
        cut = next((c for c in run.cut_off[lot] if c[0] <= wall <= c[1] + TOLERANCE_S), None)
        if stale and cut is not None:
            # Central cannot know: "unknown" (no free bay claimed) is the honest answer, as
            # a sign's "--"; a stale figure must have been true since the box was cut off.
            ok = (status == "unknown" and free_api == 0) or free_api in truth.within(
                cut[0] - TOLERANCE_S, wall
            )
            api_cut_off += ok
        else:
            ok = not stale and any(
                free_api == free and (status == "full") == (free == 0)
                for free in truth.within(wall - TOLERANCE_S, wall)
            )
        api_right += ok
    return LotResult(lot, seconds, right_s, space_in_full, lags, episodes, len(samples),
                     api_right, api_cut_off)  # fmt: skip


def cause_of(episode: Episode, faults: Sequence[tuple[float, str]]) -> str:
    shown = episode.shown
    if shown is None:
        what = "no display logged"
    elif shown[0] in ("dark", "unknown"):
        what = f"sign showed {'--' if shown[0] == 'unknown' else 'nothing'}"
    elif shown[0] == "full":
        what = f"full shown with {episode.truth} free"
    elif episode.truth == 0:
        what = f"{shown[1]} shown in a full lot"
    else:
        what = f"{shown[1]} shown, {episode.truth} free"
    near = [(at, name) for at, name in faults if episode.start - 120 <= at <= episode.end]
    if not near:
        return what + " (no fault within 120 s before: lag or counting)"
    at, name = max(near)  # the latest fault before (or during) the episode
    return f"{what} ({name} {episode.start - at:.1f} s before)"


def read_was_true(run: Run, driver: dict[str, Any]) -> bool:
    """Whether what the driver read matched the truth at some moment in the 2 s before:
    the count of their lot, or the fallback's count after a full sign's arrow."""
    kind, count = face_of(driver["read"])
    wall = driver["wall"]
    lot = driver["lot"]
    if kind == "full":
        parts = driver["read"].split()
        own_full = 0 in run.truth[lot].within(wall - TOLERANCE_S, wall)
        at = next((i for i, p in enumerate(parts) if p in run.truth), None)
        if at is not None and at + 1 < len(parts) and parts[at + 1].isdigit():
            shown = int(parts[at + 1])
            return own_full and shown in run.truth[parts[at]].within(wall - TOLERANCE_S, wall)
        return own_full
    if kind == "count":
        return count in run.truth[lot].within(wall - TOLERANCE_S, wall)
    return True  # "--" or dark: it told the driver nothing to act on


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(run: Run) -> tuple[float, float, int, list[str]]:
    lines = [
        f"window: {run.end - run.start:.0f} s wall; tolerance {TOLERANCE_S:g} s; "
        f"faults: {', '.join(name for _, name in run.faults) or 'none'}",
        f"{'lot':<4} {'signs right':>11} {'lag p50':>8} {'p99':>7} {'max':>7} "
        f"{'space@full':>10} {'API right':>9}  longest wrong episode",
    ]
    results = [compare_lot(run, lot) for lot in run.lots]
    all_lags: list[float] = []
    for r in results:
        all_lags += r.lags
        longest = max(r.episodes, key=lambda e: e.length, default=None)
        worst = (f"{longest.length:.1f} s at +{longest.start - run.start:.0f} s: "
                 f"{cause_of(longest, run.faults)}") if longest else "none"  # fmt: skip
        lines.append(
            f"{r.lot:<4} {r.share:>10.3f}% {1000 * percentile(r.lags, 50):>6.0f}ms "
            f"{1000 * percentile(r.lags, 99):>5.0f}ms {1000 * max(r.lags, default=0):>5.0f}ms "
            f"{r.space_in_full_s:>9.1f}s {r.api_share:>8.2f}%  {worst}"
        )
    seconds = sum(r.seconds for r in results)
    signs_share = 100.0 * sum(r.right_s for r in results) / seconds if seconds else 0.0
    samples = sum(r.api_samples for r in results)
    api_share = 100.0 * sum(r.api_right for r in results) / samples if samples else 0.0
    drivers = [d for d in run.drivers if run.start <= d["wall"] <= run.end]
    misled_all = [d for d in drivers if d.get("misled")]
    misled_list = [d for d in misled_all if not read_was_true(run, d)]
    misled = len(misled_list)
    raced = len(misled_all) - misled
    turned_all = [d for d in drivers if d.get("turned_away_with_space")]
    turned = sum(1 for d in turned_all if not read_was_true(run, d))
    parked = sum(1 for d in drivers if d.get("parked"))
    lines.append(
        f"all  {signs_share:>10.3f}% {1000 * percentile(all_lags, 50):>6.0f}ms "
        f"{1000 * percentile(all_lags, 99):>5.0f}ms {1000 * max(all_lags, default=0):>5.0f}ms "
        f"{sum(r.space_in_full_s for r in results):>9.1f}s {api_share:>8.2f}%"
    )
    lines.append(
        f"drivers: {len(drivers)} arrived, {parked} parked; sent to a full lot by a sign that "
        f"matched no truth of the last {TOLERANCE_S:g} s: {misled} (misled); by a sign right "
        f"within {TOLERANCE_S:g} s (the last bay went as they read it): {raced}; turned away "
        f"while their lot had space: {turned} by a wrong sign, {len(turned_all) - turned} by "
        "one right within the tolerance"
    )
    for d in misled_list[:5]:
        lines.append(f"  misled: driver {d['driver']} at {d['lot']}: {d['misled']} "
                     f"(read {d['read']!r})")  # fmt: skip
    for lot in run.lots:
        full_s = sum(
            (run.truth[lot].times[i + 1] if i + 1 < len(run.truth[lot].times) else run.end)
            - max(t, run.start)
            for i, t in enumerate(run.truth[lot].times)
            if run.truth[lot].values[i] == 0
            and (run.truth[lot].times[i + 1] if i + 1 < len(run.truth[lot].times) else run.end)
            > run.start
        )
        lines.append(f"  {lot} truly full for {full_s:.0f} s wall")
    for r in results:
        if r.api_cut_off:
            lines.append(
                f"  {r.lot} API while its box was cut off: {r.api_cut_off} of {r.api_samples} "
                f"polls said stale or unknown (counted right: central cannot know)"
            )
    return signs_share, api_share, misled, lines


# --- running the town --------------------------------------------------------------------


def poll_api(url: str, out: Path, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    with out.open("a", encoding="utf-8") as sink, httpx.Client(timeout=2) as client:
        next_at = time.monotonic()
        while proc.poll() is None:
            next_at += 1 / POLL_HZ
            try:
                response = client.get(f"{url}/api/v1/lots")
                if response.status_code == 200:
                    lots = [{k: lot.get(k) for k in API_FIELDS} for lot in response.json()["lots"]]
                    sink.write(json.dumps({"wall": time.time(), "lots": lots}) + "\n")
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(max(0.0, next_at - time.monotonic()))


def run_town(args: argparse.Namespace, run_dir: Path) -> int:
    from simulators.broker import free_port

    port = free_port()
    argv = [
        sys.executable, "-m", "parkgrid", "demo", "--headless", "--speed", str(args.speed),
        "--start", args.start, "--duration", str(args.duration), "--demand", str(args.demand),
        "--seed", str(args.seed), "--run-dir", str(run_dir), "--port", str(port),
    ]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("PARKGRID_DEMO_LOCK", str(run_dir / "demo.lock"))
    print(f"running: {' '.join(argv[2:])}", flush=True)
    with (run_dir / "demo.out").open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
        try:
            poll_api(f"http://127.0.0.1:{port}", run_dir / "api-poll.jsonl", proc)
            return proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=60)
            raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--start", default="06:00", help="town time the run starts (06:00)")
    parser.add_argument("--duration", type=float, default=330.0, help="wall seconds (330)")
    parser.add_argument("--demand", type=float, default=1.6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--day", action="store_true", help="24 hours from 04:30 instead")
    parser.add_argument("--run-dir", type=Path, help="keep the run here (default: a temp dir)")
    parser.add_argument("--analyse", type=Path, help="only analyse this finished run folder")
    args = parser.parse_args()
    if args.day:
        args.start, args.duration = "04:30", 24 * 3600 / args.speed
    if args.analyse is not None:
        run_dir = args.analyse
    else:
        run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="field-truth-"))
        run_dir.mkdir(parents=True, exist_ok=True)
        code = run_town(args, run_dir)
        if code != 0:
            print((run_dir / "demo.out").read_text(errors="replace")[-2000:])
            print(f"field truth: the demo failed (exit {code}): FAIL")
            return 1
    run = load_run(run_dir)
    signs_share, api_share, misled, lines = report(run)
    print(f"run folder: {run_dir}")
    for line in lines:
        print(line)
    ok = signs_share >= GOAL_SIGNS and api_share >= GOAL_API and misled == 0
    print(
        f"field truth: signs {signs_share:.2f}% right within 2 s, API {api_share:.2f}% right "
        f"within 2 s, drivers misled {misled} (goal 99.9%, 99.5%, 0): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
