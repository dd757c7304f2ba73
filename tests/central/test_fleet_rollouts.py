"""Staged rollouts end to end: a real Mosquitto, central's app with its rollout engine and
ingest, real SQLite, and protocol-level stand-in boxes (tests/central/rollout_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db import schema as t
from simulators.broker import MosquittoBroker
from tests.central.helpers import wait_for
from tests.central.rollout_support import (
    StandInBox,
    login,
    rollout_central,
    store_releases,
    town_clock,
)

BOXES = ("box-p1", "box-p2", "box-s1")
ROLLOUTS = "/api/v1/fleet/rollouts"


@pytest.fixture
def central(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[TestClient]:
    store_releases(tmp_path / "releases", tmp_path, {"1.1.0": False, "1.0.1": True, "1!2.0": False})
    town_clock(tmp_path / "town-clock.json", hour=12)  # midday: outside the default window
    with rollout_central(mosquitto, tmp_path) as client:
        yield client


@pytest.fixture
def boxes(mosquitto: MosquittoBroker) -> Iterator[dict[str, StandInBox]]:
    made = {box: StandInBox(mosquitto, box, "1.0.0") for box in BOXES}
    yield made
    for box in made.values():
        box.close()


def _rollout(client: TestClient, rollout_id: int) -> dict[str, Any]:
    answer = client.get(f"{ROLLOUTS}/{rollout_id}", headers=login(client, "vic"))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _states(rollout: dict[str, Any]) -> dict[str, str]:
    return {b["box_id"]: b["state"] for b in rollout["boxes"]}


def _online(client: TestClient, box: StandInBox) -> None:
    box.online()
    wait_for(
        lambda: next(
            b["online"]
            for b in client.get("/api/v1/boxes", headers=login(client, "vic")).json()
            if b["id"] == box.box_id
        ),
        what=f"{box.box_id} online at central",
    )


def _start(client: TestClient, **options: Any) -> dict[str, Any]:
    body = {"version": "1.1.0", "town": "testtown", **options}
    answer = client.post(ROLLOUTS, json=body, headers=login(client, "ada"))
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _audit(client: TestClient) -> list[tuple[str, str, str | None]]:
    engine = client.app.state.central.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(t.audit.c.actor, t.audit.c.action, t.audit.c.target)
                            .order_by(t.audit.c.id)).all()  # fmt: skip
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_canary_goes_first_then_each_wave_after_the_last_confirmed(
    central: TestClient, boxes: dict[str, StandInBox]
) -> None:
    for box in boxes.values():
        _online(central, box)
    started = _start(central)
    assert [(b["box_id"], b["wave"]) for b in started["boxes"]] == [
        ("box-p1", "canary"), ("box-p2", "share"), ("box-s1", "rest"),
    ]  # fmt: skip
    done = wait_for(
        lambda: (r := _rollout(central, started["id"]))["state"] == "done" and r,
        what="the rollout to finish",
    )
    assert _states(done) == dict.fromkeys(BOXES, "confirmed")
    sent = {b["box_id"]: b["sent_at"] for b in done["boxes"]}
    assert sent["box-p1"] < sent["box-p2"] < sent["box-s1"]
    # each wave went out only after the one before was confirmed: a box confirms ~0.4 s
    # after its command (restart, gate), the engine beats every 0.1 s
    import datetime as dt

    gaps = [
        dt.datetime.fromisoformat(sent[b]) - dt.datetime.fromisoformat(sent[a])
        for a, b in (("box-p1", "box-p2"), ("box-p2", "box-s1"))
    ]
    assert all(gap.total_seconds() >= 0.35 for gap in gaps), gaps
    assert [len(box.installs) for box in boxes.values()] == [1, 1, 1]
    install = boxes["box-p1"].installs[0]["body"]
    assert install["version"] == "1.1.0" and install["rollout"] == started["id"]
    assert install["sha256"].startswith("sha256:")
    fleet = central.get("/api/v1/fleet", headers=login(central, "vic")).json()
    assert {row["box_id"]: (row["release_version"], row["release_state"]) for row in fleet} == (
        dict.fromkeys(BOXES, ("1.1.0", "confirmed"))
    )
    actions = [(a, act) for a, act, _ in _audit(central) if act.startswith(("fleet", "command"))]
    assert actions == [
        ("user:ada", "fleet.rollout"),
        (f"rollout:{started['id']}", "command.install-release"),
        (f"rollout:{started['id']}", "command.install-release"),
        (f"rollout:{started['id']}", "command.install-release"),
        ("rollout-engine", "fleet.rollout-done"),
    ]


def test_a_failed_canary_halts_then_resume_and_rollback(
    central: TestClient, boxes: dict[str, StandInBox]
) -> None:
    boxes["box-p1"].behaviour = "bad"
    for box in boxes.values():
        _online(central, box)
    started = _start(central)
    halted = wait_for(
        lambda: (r := _rollout(central, started["id"]))["state"] == "halted" and r,
        what="the rollout to halt",
    )
    assert _states(halted) == {"box-p1": "failed", "box-p2": "waiting", "box-s1": "waiting"}
    assert "1 box(es) failed" in halted["reason"] and "box-p1" in halted["reason"]
    assert "failed its health gate: not connected to the broker" in halted["reason"]
    p1 = next(b for b in halted["boxes"] if b["box_id"] == "box-p1")
    assert p1["reason"].startswith("rolled back by the box:")
    fleet = central.get("/api/v1/fleet", headers=login(central, "vic")).json()
    row = next(r for r in fleet if r["box_id"] == "box-p1")
    assert (row["release_state"], row["release_failed_version"]) == ("rolled_back", "1.1.0")
    assert (boxes["box-p2"].installs, boxes["box-s1"].installs) == ([], [])
    admin = login(central, "ada")
    # resume: the threshold counts failures from now on; the failed canary stays failed
    resumed = central.post(f"{ROLLOUTS}/{started['id']}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["state"] == "running", resumed.text
    done = wait_for(
        lambda: (r := _rollout(central, started["id"]))["state"] == "done" and r,
        what="the resumed rollout to finish",
    )
    assert _states(done) == {"box-p1": "failed", "box-p2": "confirmed", "box-s1": "confirmed"}
    # rollback: a release built with --rollback, to the boxes the rollout reached
    refused = central.post(f"{ROLLOUTS}/{started['id']}/rollback", json={"version": "1.1.0"},
                           headers=admin)  # fmt: skip
    assert refused.status_code == 422 and "--rollback" in refused.json()["detail"]
    back = central.post(f"{ROLLOUTS}/{started['id']}/rollback", json={"version": "1.0.1"},
                        headers=admin)  # fmt: skip
    assert back.status_code == 201, back.text
    assert back.json()["kind"] == "rollback" and back.json()["rollback_of"] == started["id"]
    assert sorted(_states(back.json())) == ["box-p2", "box-s1"]  # box-p1 went back by itself
    wait_for(lambda: _rollout(central, back.json()["id"])["state"] == "done", what="the rollback")
    assert _rollout(central, started["id"])["state"] == "rolled_back"
    assert boxes["box-p2"].version == "1.0.1" and boxes["box-s1"].version == "1.0.1"
    actions = [act for _, act, _ in _audit(central) if act.startswith("fleet")]
    assert actions == [
        "fleet.rollout", "fleet.rollout-halted", "fleet.rollout-resume", "fleet.rollout-done",
        "fleet.rollback", "fleet.rollout-done",
    ]  # fmt: skip


def test_the_install_carries_the_rollout_s_trial_window(
    central: TestClient, boxes: dict[str, StandInBox]
) -> None:
    for box in boxes.values():
        _online(central, box)
    started = _start(central, trial_window_s=60, confirm_timeout_s=300)
    assert started["trial_window_s"] == 60
    done = wait_for(
        lambda: (r := _rollout(central, started["id"]))["state"] == "done" and r,
        what="the rollout to finish",
    )
    assert done["trial_window_s"] == 60
    bodies = [box.installs[0]["body"] for box in boxes.values()]
    assert [b["confirm_within_s"] for b in bodies] == [60, 60, 60]
    # no trial window given: the box's own default, the command does not carry one
    admin = login(central, "ada")
    rollback = central.post(f"{ROLLOUTS}/{started['id']}/rollback", json={"version": "1.0.1"},
                            headers=admin)  # fmt: skip
    assert rollback.status_code == 201 and rollback.json()["trial_window_s"] == 60
    wait_for(lambda: _rollout(central, rollback.json()["id"])["state"] == "done", what="back")
    assert [box.installs[1]["body"]["confirm_within_s"] for box in boxes.values()] == [60] * 3


def test_without_a_trial_window_the_box_keeps_its_default(
    central: TestClient, boxes: dict[str, StandInBox]
) -> None:
    _online(central, boxes["box-p1"])
    started = _start(central, canary=1)
    assert started["trial_window_s"] is None
    wait_for(lambda: boxes["box-p1"].installs, what="the canary's install")
    assert boxes["box-p1"].installs[0]["body"].get("confirm_within_s") is None


def test_a_refused_install_fails_the_box_with_its_reason(
    central: TestClient, boxes: dict[str, StandInBox]
) -> None:
    boxes["box-p1"].behaviour = "refuse"
    _online(central, boxes["box-p1"])
    started = _start(central, canary=1)
    halted = wait_for(
        lambda: (r := _rollout(central, started["id"]))["state"] == "halted" and r,
        what="the rollout to halt",
    )
    p1 = next(b for b in halted["boxes"] if b["box_id"] == "box-p1")
    assert p1["state"] == "failed" and p1["reason"].startswith("refused: disk:")


def test_an_offline_box_is_deferred_then_served_back_inside_the_window_only(
    central: TestClient, boxes: dict[str, StandInBox], tmp_path: Path
) -> None:
    _online(central, boxes["box-p1"])
    _online(central, boxes["box-p2"])  # box-s1 has never come online
    started = _start(central, share=100)
    deferred = wait_for(
        lambda: (r := _rollout(central, started["id"]))["boxes"]
        and _states(r) == {"box-p1": "confirmed", "box-p2": "confirmed",
                           "box-s1": "offline-deferred"} and r,
        what="box-s1 deferred",
    )  # fmt: skip
    s1 = next(b for b in deferred["boxes"] if b["box_id"] == "box-s1")
    assert "20:00-06:00" in s1["reason"] and deferred["state"] == "running"
    _online(central, boxes["box-s1"])  # back at 12:30 town time: outside the window
    wait_for(lambda: False or _beats(central, 10), what="ten engine beats")
    assert boxes["box-s1"].installs == []
    assert _states(_rollout(central, started["id"]))["box-s1"] == "offline-deferred"
    town_clock(tmp_path / "town-clock.json", hour=22)  # the town's evening: inside
    done = wait_for(
        lambda: (r := _rollout(central, started["id"]))["state"] == "done" and r,
        what="box-s1 served",
    )
    assert _states(done)["box-s1"] == "confirmed" and len(boxes["box-s1"].installs) == 1


def test_with_every_box_offline_the_canary_wave_waits(central: TestClient) -> None:
    started = _start(central)  # nobody online: the canary is deferred, the others wait
    wait_for(
        lambda: _states(_rollout(central, started["id"]))["box-p1"] == "offline-deferred",
        what="the canary deferred",
    )
    _beats(central, 10)
    rollout = _rollout(central, started["id"])
    assert (rollout["state"], rollout["wave"]) == ("running", "canary")
    assert _states(rollout) == {"box-p1": "offline-deferred", "box-p2": "waiting",
                                "box-s1": "waiting"}  # fmt: skip


def _beats(client: TestClient, n: int) -> bool:
    import time

    time.sleep(n * client.app.state.central.settings.rollout_step_s)  # type: ignore[attr-defined]
    return True


def test_only_an_admin_acts_and_bad_input_is_refused_clearly(central: TestClient) -> None:
    admin, operator, viewer = (login(central, n) for n in ("ada", "olga", "vic"))
    body = {"version": "1.1.0", "town": "testtown"}
    for who in (operator, viewer):
        assert central.post(ROLLOUTS, json=body, headers=who).status_code == 403
    refused = {
        "unknown version": ({**body, "version": "9.9.9"}, "not stored at central"),
        "not a box's version": ({**body, "version": "1!2.0"}, "no release version a box takes"),
        "unknown town": ({**body, "town": "elsewhere"}, "no town 'elsewhere'"),
        "share 0": ({**body, "share": 0}, "share: 0 %"),
        "share 150": ({**body, "share": 150}, "share: 150 %"),
        "bad window": ({**body, "window": "25:00-06:00"}, "window: '25:00-06:00'"),
        "no threshold": ({**body, "max_failures": 0}, "max_failures"),
        "trial window too short": ({**body, "trial_window_s": 10}, "trial_window_s: 10"),
        "trial window too long": ({**body, "trial_window_s": 4000}, "trial_window_s: 4000"),
        "timeout within the trial": (
            {**body, "trial_window_s": 300, "confirm_timeout_s": 300},
            "confirm_timeout_s: 300 s is not longer than the trial window (300 s)",
        ),
        "timeout within the default trial": (
            {**body, "confirm_timeout_s": 500},
            "confirm_timeout_s: 500 s is not longer than the trial window (600 s",
        ),
    }
    for what, (request, says) in refused.items():
        answer = central.post(ROLLOUTS, json=request, headers=admin)
        assert answer.status_code == 422 and says in answer.json()["detail"], (what, answer.text)
    assert central.get(ROLLOUTS, headers=viewer).json() == []  # nothing was started
    started = central.post(ROLLOUTS, json=body, headers=admin).json()
    again = central.post(ROLLOUTS, json=body, headers=admin)
    assert again.status_code == 409 and f"rollout {started['id']} is running" in again.text
    for action in ("halt", "resume"):
        path = f"{ROLLOUTS}/{started['id']}/{action}"
        assert central.post(path, headers=operator).status_code == 403
        assert central.post(path, headers=admin).status_code == 200
    assert central.post(f"{ROLLOUTS}/999/halt", headers=admin).status_code == 404
    # a halted rollout cannot be rolled back while another runs in the town
    assert central.post(f"{ROLLOUTS}/{started['id']}/halt", headers=admin).status_code == 200
    other = central.post(ROLLOUTS, json=body, headers=admin).json()
    busy = central.post(f"{ROLLOUTS}/{started['id']}/rollback", json={"version": "1.0.1"},
                        headers=admin)  # fmt: skip
    assert busy.status_code == 409 and f"rollout {other['id']} is running" in busy.text
    assert _rollout(central, started["id"])["state"] == "halted"  # nothing changed
    rollback = f"{ROLLOUTS}/{started['id']}/rollback"
    assert central.post(rollback, json={"version": "1.0.1"}, headers=viewer).status_code == 403
    sneaked = {"command": "install-release", "version": "1.1.0", "sha256": "sha256:" + "a" * 64}
    answer = central.post("/api/v1/boxes/box-p1/commands", json={"body": sneaked},
                          headers=operator)  # fmt: skip
    assert answer.status_code == 422 and "installed by a rollout" in answer.text
    listed = central.get(ROLLOUTS, headers=viewer).json()
    assert [r["id"] for r in listed] == [other["id"], started["id"]]
