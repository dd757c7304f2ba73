"""bench/field_truth.py's analysis on a hand-made run folder: it counts what it should."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("field_truth", ROOT / "bench" / "field_truth.py")
assert SPEC is not None and SPEC.loader is not None
field_truth = importlib.util.module_from_spec(SPEC)
sys.modules["field_truth"] = field_truth  # its dataclasses look their module up
SPEC.loader.exec_module(field_truth)

T0 = 1000.0


def _lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _truth(at: float, lot: str, free: int) -> dict[str, Any]:
    return {"wall": at, "town": at, "kind": "bay", "lot": lot, "bay": f"{lot}-001",
            "truth": {"capacity": 10, "free": free, "occupied": 10 - free, "unknown": 0,
                      "closed": 0}}  # fmt: skip


def _shown(at: float, sign: str, text: str) -> dict[str, Any]:
    return {"wall": at, "unit": 1, "sign": sign, "shown": text, "why": "write"}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "demo.json").write_text(
        json.dumps({"site_file": str(ROOT / "sites" / "xigang.toml"), "wall_start": T0})
    )
    lots = ("P1", "P2", "P3", "P4")
    truth = [_truth(T0, lot, 5) for lot in lots]
    truth += [_truth(T0 + 50, "P1", 0), _truth(T0 + 80, "P1", 1)]
    truth += [
        {"wall": T0 + 60, "town": T0, "kind": "driver", "driver": 1, "lot": "P1",
         "read": "P1 3 ← amber", "knows_town": False, "parked": None,
         "misled": "P1's sign showed 3 free", "turned_away_with_space": False},
        {"wall": T0 + 90, "town": T0, "kind": "driver", "driver": 2, "lot": "P1",
         "read": "满 FULL → P4 5 green", "knows_town": False, "parked": "P4", "misled": None,
         "turned_away_with_space": True},
    ]  # fmt: skip
    truth.append(_truth(T0 + 100, "P4", 5))  # the end of the window
    _lines(tmp_path / "truth-timeline.jsonl", truth)
    signs = [_shown(T0 - 1, f"{lot}-ENTRANCE", f"{lot} 5 ↑ green") for lot in lots]
    # P1 says full 0.5 s late (right, within 2 s); then shows a stale 3 from 60 s to 70 s;
    # a freed bay at 80 s is shown as full for 20 s.
    signs += [_shown(T0 + 50.5, "P1-ENTRANCE", "满 FULL → P4 5 green"),
              _shown(T0 + 60, "P1-ENTRANCE", "P1 3 ← amber"),
              _shown(T0 + 70, "P1-ENTRANCE", "满 FULL → P4 5 green")]  # fmt: skip
    _lines(tmp_path / "signs" / "box-p1-display.jsonl", signs)
    api = []
    for n in range(400):
        at = T0 + n * 0.25
        stale = 20 <= at - T0 < 30
        api.append({"wall": at, "lots": [
            {"id": lot, "free": 0 if stale else (5 if lot != "P1" or at < T0 + 50
                                                  else 0 if at < T0 + 80 else 1),
             "status": "full" if (lot == "P1" and T0 + 50 <= at < T0 + 80) or stale
             else "spacesAvailable", "stale": stale and lot == "P3"}
            for lot in lots]})  # fmt: skip
    _lines(tmp_path / "api-poll.jsonl", api)
    return tmp_path


def test_field_truth_counts_wrong_signs_api_and_misled_drivers(run_dir: Path) -> None:
    field_truth.WARM_UP_S = 0.0
    run = field_truth.load_run(run_dir)
    p1 = field_truth.compare_lot(run, "P1")
    # Wrong: the stale 3 (60..70: 10 s; the lot had not had 3 free at any time near) and
    # full with a bay free beyond 2 s (82..100: 18 s); the 0.5 s late "full" is right.
    assert p1.seconds - p1.right_s == pytest.approx(28.0, abs=0.5)
    assert max(e.length for e in p1.episodes) == pytest.approx(18.0, abs=0.5)
    assert field_truth.compare_lot(run, "P2").share == pytest.approx(100.0)
    # P3's API was stale for 10 s: wrong, whatever the free count said.
    assert field_truth.compare_lot(run, "P3").api_share == pytest.approx(90.0, abs=0.5)
    signs, api, misled, lines = field_truth.report(run)
    assert api < 99.5
    assert misled == 1  # the 3 driver 1 read matched no truth of the 2 s before
    assert any("turned away while their lot had space: 1 by a wrong sign" in x for x in lines)
    assert signs < 99.9


def test_field_truth_api_while_a_box_is_cut_off(run_dir: Path) -> None:
    """While box-p2's network is cut (20..30 s), central cannot know P2: "unknown" (no free
    bay claimed) is right, like a sign's "--"; a stale figure only if it was true since the
    cut; stale beyond 2 s after the network came back is wrong."""
    field_truth.WARM_UP_S = 0.0
    timeline = run_dir / "truth-timeline.jsonl"
    faults = [
        {"wall": T0 + 20, "town": T0, "kind": "fault", "fault": "BoxNetwork",
         "box_id": "box-p2", "up": False},
        {"wall": T0 + 30, "town": T0, "kind": "fault", "fault": "BoxNetwork",
         "box_id": "box-p2", "up": True},
        # box-p4 restarts (its process stopped 20..25 s); box-p3's restart has no BoxStarted
        # (a run from before that record): no window.
        {"wall": T0 + 20, "town": T0, "kind": "fault", "fault": "BoxRestarts", "box_id": "box-p4"},
        {"wall": T0 + 25, "town": T0, "kind": "fault", "fault": "BoxStarted", "box_id": "box-p4"},
        {"wall": T0 + 20, "town": T0, "kind": "fault", "fault": "BoxRestarts", "box_id": "box-p3"},
    ]  # fmt: skip
    records = field_truth.read_jsonl(timeline)
    _lines(timeline, records[:-1] + faults + records[-1:])  # the last record ends the window
    poll = run_dir / "api-poll.jsonl"
    records = field_truth.read_jsonl(poll)
    for record in records:
        if 20 <= record["wall"] - T0 < 27:  # P4 unknown while its box restarts
            next(lot for lot in record["lots"] if lot["id"] == "P4").update(
                stale=True, status="unknown", free=0
            )
        p2 = next(lot for lot in record["lots"] if lot["id"] == "P2")
        since_cut = record["wall"] - T0 - 20
        if 0 <= since_cut < 15:  # unknown for 10 s, then a stale 5 (true), then a stale 9
            p2.update(stale=True, status="unknown", free=0)
            if since_cut >= 10:
                p2.update(status="spacesAvailable", free=5 if since_cut < 13 else 9)
    _lines(poll, records)
    run = field_truth.load_run(run_dir)
    assert run.cut_off["P3"] == []
    p4 = field_truth.compare_lot(run, "P4")
    assert p4.api_cut_off == 7 * 4  # unknown 20..27 s: right, to 2 s after BoxStarted
    p2 = field_truth.compare_lot(run, "P2")
    # Wrong: stale from 32 s (2 s after the network came back) to 35 s: 3 s of 100.
    assert p2.api_share == pytest.approx(97.0, abs=0.5)
    assert p2.api_cut_off == 12 * 4 + 1  # 20..32 s inclusive, polled at 4 Hz
