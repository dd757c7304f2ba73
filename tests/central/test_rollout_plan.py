"""The rollout's pure rules: waves, the maintenance window, what a box's reports mean; and
migration 0008 going down and up again on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from central.db.migrate import current, downgrade, upgrade
from central.errors import Conflict
from central.fleet import rollout_store
from central.fleet.rollout_models import RolloutIn
from central.fleet.rollout_plan import (
    DEFAULT_WINDOW,
    PlanError,
    check_options,
    outcome,
    parse_window,
    waves,
)
from site_model.site import Site
from tests.central.rollout_support import store_releases

BOXES = [f"box-{i:02}" for i in range(1, 11)]


def test_waves_put_an_online_canary_first_then_the_share_then_the_rest() -> None:
    online = dict.fromkeys(BOXES, True) | {"box-01": False}
    wave = waves(BOXES, online, canary=1, share=25)
    assert [b for b, w in wave.items() if w == 0] == ["box-02"]  # box-01 is offline
    assert sorted(b for b, w in wave.items() if w == 1) == ["box-01", "box-03", "box-04"]
    assert sum(1 for w in wave.values() if w == 2) == 6  # ceil(9 * 25 %) = 3 in wave two
    assert waves(["a", "b"], {}, canary=0, share=1) == {"a": 1, "b": 2}  # at least one box
    assert set(waves(BOXES, {}, canary=0, share=100).values()) == {1}


def test_the_window_wraps_midnight_and_bad_windows_are_refused() -> None:
    night = parse_window(DEFAULT_WINDOW)
    inside = [dt.time(20, 0), dt.time(23, 59), dt.time(0, 0), dt.time(5, 59)]
    outside = [dt.time(6, 0), dt.time(7, 30), dt.time(12, 0), dt.time(17, 30), dt.time(19, 59)]
    assert all(night.holds(t) for t in inside) and not any(night.holds(t) for t in outside)
    two = parse_window("10:00-16:00, 21:00-05:00")
    assert (
        two.text == "10:00-16:00,21:00-05:00" and two.holds(dt.time(11)) and two.holds(dt.time(1))
    )
    for bad in ("25:00-06:00", "20:00", "20:00-20:00", "8:00-9:00", ""):
        with pytest.raises(PlanError) as refused:
            parse_window(bad)
        assert refused.value.field == "window"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"share": 0}, "share"),
        ({"share": 101}, "share"),
        ({"canary": -1}, "canary"),
        ({"max_failures": 0}, "max_failures"),
        ({"confirm_timeout_s": 1}, "confirm_timeout_s"),
    ],
)
def test_bad_options_name_their_field(options: dict[str, float], field: str) -> None:
    base = {"canary": 1, "share": 25, "max_failures": 1, "confirm_timeout_s": 900.0}
    with pytest.raises(PlanError) as refused:
        check_options(**(base | options))  # type: ignore[arg-type]
    assert refused.value.field == field


def _outcome(**kw: object) -> object:
    base: dict[str, object] = {
        "version": "1.1.0", "state": "sent", "sent_boot": "boot-1", "sent_at": 1000.0,
        "now": 1010.0, "confirm_timeout_s": 600.0, "reply": None,
        "status": {"boot_id": "boot-1", "release": {"version": "1.0.0", "state": "confirmed"}},
    }  # fmt: skip
    return outcome(**(base | kw)).state  # type: ignore[arg-type]


def test_what_a_box_reports_moves_it_on() -> None:
    rolled = {"boot_id": "boot-2", "release": {"version": "1.0.0", "state": "rolled_back",
              "failed_version": "1.1.0", "reason": "gate"}}  # fmt: skip
    assert _outcome() == "sent"
    assert _outcome(reply=(True, None)) == "installing"
    assert _outcome(reply=(False, "disk")) == "failed"
    assert _outcome(status={"boot_id": "boot-2", "release": {"version": "1.1.0",
                    "state": "confirmed"}}) == "confirmed"  # fmt: skip
    assert _outcome(status=rolled) == "failed"
    # the same rolled-back report from the boot the command found is an earlier attempt's
    assert _outcome(status=rolled | {"boot_id": "boot-1"}, reply=(True, None)) == "installing"
    assert _outcome(now=1601.0) == "failed"  # not confirmed in time


def test_a_box_back_from_a_power_cut_without_the_release_is_sent_it_again() -> None:
    """The box lost its power before its install was switched to (no reply): it comes back
    on a new boot still running the old release, confirmed. Its install is gone with the
    power; the rollout sends it again instead of waiting for the timeout and failing it."""
    back = {"boot_id": "boot-2", "release": {"version": "1.0.0", "state": "confirmed"}}
    assert _outcome(status=back) == "waiting"
    # the same boot, or a reply already in (the switch done): not an interrupted install
    assert _outcome(status=back | {"boot_id": "boot-1"}) == "sent"
    assert _outcome(status=back, reply=(True, None)) == "installing"
    # back on the new release on trial (cut after the switch): it is installing
    trial = {"boot_id": "boot-2", "release": {"version": "1.1.0", "state": "on_trial"}}
    assert _outcome(status=trial) == "sent"


def test_migration_0008_goes_down_and_up_again(engine: Engine) -> None:
    head = current(engine)
    downgrade(engine, "0007")
    assert "rollouts" not in inspect(engine).get_table_names()
    upgrade(engine, "0008")
    assert {"rollouts", "rollout_boxes"} <= set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current(engine) == head


def test_two_admins_starting_at_once_get_one_running_rollout(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    """Eight starts of a rollout to one town at the same moment: one runs, seven get 409."""
    store_releases(tmp_path / "releases", tmp_path, {"1.1.0": False})
    request = RolloutIn(version="1.1.0", town=site.id)
    gate = threading.Barrier(8)
    outcomes: list[str] = []

    def start() -> None:
        gate.wait()
        try:
            rollout_store.start(engine, site, releases_dir=tmp_path / "releases",
                                request=request, actor="ada")  # fmt: skip
            outcomes.append("started")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["conflict"] * 7 + ["started"]
    assert [r.state for r in rollout_store.list_rollouts(engine)] == ["running"]
