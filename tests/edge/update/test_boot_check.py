"""The boot check's decisions on real slot folders and a real state file (no venvs here:
a slot is complete when its release file exists, which is all the boot check reads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.update.boot_check import boot_check
from edge.update.slots import RELEASE_FILE, Layout, Trial

T0 = 1_800_000_000.0


def make_box(prefix: Path, current: str = "a", **versions: str) -> Layout:
    layout = Layout(prefix)
    for slot, version in (versions or {"a": "1.0.0", "b": "1.1.0"}).items():
        layout.slot_dir(slot).mkdir(parents=True)
        (layout.slot_dir(slot) / RELEASE_FILE).write_text(json.dumps({"version": version}))
    layout.point_current_at(current)
    return layout


def on_trial(layout: Layout, **kw: object) -> None:
    state = layout.load()
    state.good = "a"
    state.trial = Trial(slot="b", version="1.1.0", from_slot="a", confirm_within_s=60,
                        max_boots=2, **kw)  # type: ignore[arg-type]  # fmt: skip
    layout.save(state)


def test_a_trial_that_keeps_crashing_on_start_goes_back_after_max_boots(tmp_path: Path) -> None:
    layout = make_box(tmp_path, current="b")
    on_trial(layout)
    assert boot_check(layout, now=T0).slot == "b"
    assert boot_check(layout, now=T0 + 5).slot == "b"  # start 2 of 2
    decision = boot_check(layout, now=T0 + 10)  # a third start: it never got confirmed
    assert decision.slot == "a" and layout.current_slot() == "a"
    assert "rolled back from 1.1.0" in decision.said
    state = layout.load()
    assert state.trial is None and state.history[-1]["event"] == "rolled back"
    assert boot_check(layout, now=T0 + 20).slot == "a"  # and stays there


def test_a_trial_not_confirmed_in_time_goes_back(tmp_path: Path) -> None:
    layout = make_box(tmp_path, current="b")
    on_trial(layout)
    assert boot_check(layout, now=T0).slot == "b"  # its first start: the clock starts here
    decision = boot_check(layout, now=T0 + 61)
    assert decision.slot == "a"
    assert "not confirmed within 60 s" in layout.load().history[-1]["reason"]


def test_a_trial_whose_gate_failed_goes_back_with_the_gate_s_reason(tmp_path: Path) -> None:
    layout = make_box(tmp_path, current="b")
    on_trial(layout, boots=1, since=T0, gate_failed="not connected to the broker")
    decision = boot_check(layout, now=T0 + 1)
    assert decision.slot == "a" and "not connected to the broker" in decision.said


def test_a_power_cut_between_the_trial_record_and_the_switch_keeps_the_old_release(
    tmp_path: Path,
) -> None:
    layout = make_box(tmp_path, current="a")
    on_trial(layout)  # recorded, but current still names a
    decision = boot_check(layout, now=T0)
    assert decision.slot == "a" and "interrupted" in decision.said
    assert layout.load().trial is None


def test_a_current_that_names_no_complete_slot_is_repaired(tmp_path: Path) -> None:
    layout = make_box(tmp_path, current="b")
    (layout.slot_dir("b") / RELEASE_FILE).unlink()  # cut while slot b was being rebuilt
    (layout.slot_dir("b") / "bin").mkdir(exist_ok=True)
    state = layout.load()
    layout.save(state)
    layout.current.unlink()
    decision = boot_check(layout, now=T0)
    assert decision.slot == "a" and layout.current_slot() == "a"


def test_no_release_at_all_fails_the_start_with_a_reason(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.releases.mkdir()
    decision = boot_check(layout, now=T0)
    assert decision.slot is None and "no complete release" in decision.said


@pytest.mark.parametrize("command", ["boot-check", "releases"])
def test_the_commands_answer_on_a_box(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from parkgrid.cli import main

    make_box(tmp_path, current="a")
    assert main(["edge", command, "--prefix", str(tmp_path)]) == 0
    assert "1.0.0" in capsys.readouterr().out


def test_an_unreadable_state_file_does_not_stop_the_box(tmp_path: Path) -> None:
    layout = make_box(tmp_path, current="b")
    layout.state_file.write_bytes(b'{"good": "a", "trial": {"slot": ')  # a disk fault
    decision = boot_check(layout, now=T0)
    assert decision.slot == "b" and "state.json unreadable" in decision.said
    assert layout.load().history[-1]["event"] == "state unreadable"
