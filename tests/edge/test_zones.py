"""The zone agent with a fake clock: every transition, alerts up the ladder, restarts, jumps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from edge.agents.zone_tables import (
    BAY_TABLE,
    PHASES,
    ZONE_TABLE,
    ZoneTableError,
    bay_step,
    zone_step,
)
from edge.agents.zones import BayView, ScheduleRejected, ZoneAgent, ZoneUpdate, alert_id_for
from edge.config import ConfigError, EdgeConfig, parse_config
from firmware_protocols.signs import Message
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertResolved,
    DateOverride,
    LadderStep,
    ScheduleDocument,
    Severity,
    TimeWindow,
    Weekday,
    WeeklyWindow,
    ZoneClass,
    ZoneOpenState,
    ZoneSchedule,
    ZoneTransition,
)

TZ = ZoneInfo("Asia/Shanghai")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def at(text: str) -> float:
    """Epoch seconds of a local Shanghai time; 2025-03-03 is a Monday."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def zone_config(tmp_path: Path, **zones: dict[str, Any]) -> EdgeConfig:
    if not zones:
        zones = {
            "M1": {
                "class": "regulated",
                "name": "morning market",
                "bays": {"S1": {"sensor": "00B00001", "format": "nwave-nps"}},
                "windows": [{"days": WEEKDAYS, "start": "06:00", "end": "09:30"}],
                "grace_s": 600,
                "closing_soon_s": 900,
                "ladder": [
                    {"after_s": 0, "severity": "warning"},
                    {"after_s": 900, "severity": "escalated"},
                ],
            }
        }
    return parse_config(
        {
            "site": "xigang",
            "box_id": "box-z1",
            "data_dir": str(tmp_path),
            "serial": {"c": {"device": "/dev/x", "protocol": "concentrator"}},
            "zones": zones,
        }
    )


def bays(**states: str | tuple[str, float]) -> dict[str, BayView]:
    out = {}
    for bay_id, value in states.items():
        state, since = value if isinstance(value, tuple) else (value, 0.0)
        out[bay_id] = BayView(state, since)  # type: ignore[arg-type]
    return out


def events(update: ZoneUpdate, kind: type[BaseModel]) -> list[Any]:
    return [body for body, _ in update.events if isinstance(body, kind)]


# --- the tables ----------------------------------------------------------------------------


def test_zones_table_has_a_row_for_every_state_and_phase() -> None:
    """Every state meets every phase (clock steps jump anywhere); the next state is the phase."""
    states = {state for state, _ in ZONE_TABLE}
    assert states == {"starting", *PHASES}
    for state in states:
        for phase in PHASES:
            action, next_state = zone_step(state, phase)
            assert next_state == phase
            assert (action == "none") == (state == phase)


def test_zones_table_refuses_an_unknown_input() -> None:
    """An input without a row raises, naming the table, state and input."""
    with pytest.raises(ZoneTableError) as info:
        zone_step("open", "lunch_break")  # type: ignore[arg-type]
    assert (info.value.table, info.value.state, info.value.input) == ("zone", "open", "lunch_break")
    with pytest.raises(ZoneTableError):
        bay_step("alerted", "maybe")  # type: ignore[arg-type]


def test_zones_bay_table_is_complete_and_never_resolves_on_unknown() -> None:
    """Every (watch, condition) has a row; an unknown sensor never raises or resolves."""
    for watch in ("clear", "pending", "alerted"):
        for condition in ("ok", "unknown", "waiting", "due"):
            assert (watch, condition) in BAY_TABLE
        assert BAY_TABLE[(watch, "unknown")] == ("none", watch)


# --- a day of a morning market -------------------------------------------------------------


def test_zones_morning_market_day_transitions_and_signs(tmp_path: Path) -> None:
    """Open, closing soon (signs only), closing, closed, open next day: events and messages."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 05:00"))
    empty = bays(S1="free")
    steps = [
        ("2025-03-03 05:00", "closed", None, Message.STALL_ZONE_CLOSED),
        ("2025-03-03 06:00", "open", ("closed", "open"), Message.BLANK),
        ("2025-03-03 09:15", "closing_soon", None, Message.STALL_ZONE_CLOSING),
        ("2025-03-03 09:30", "closing", ("open", "closing"), Message.STALL_ZONE_CLOSING),
        ("2025-03-03 09:40", "closed", ("closing", "closed"), Message.STALL_ZONE_CLOSED),
        ("2025-03-04 06:00", "open", ("closed", "open"), Message.BLANK),
    ]
    for when, state, transition, message in steps:
        now = at(when)
        update = agent.evaluate(now, empty)
        assert agent.state_name("M1") == state, when
        moves = [(t.from_state.value, t.to_state.value) for t in events(update, ZoneTransition)]
        assert moves == ([transition] if transition else []), when
        assert agent.display("M1", brightness=80).message is message
        assert update.zones_redrawn == {"M1"}, when
        assert agent.next_deadline() is not None and agent.next_deadline() > now  # type: ignore[operator]
    # In grace the sign flashes; in the window it does not.
    agent.evaluate(at("2025-03-04 09:31"), empty)
    assert agent.display("M1", brightness=80).flashing
    agent.evaluate(at("2025-03-05 07:00"), empty)
    assert not agent.display("M1", brightness=80).flashing


def test_zones_state_published_only_when_it_changes(tmp_path: Path) -> None:
    """ZoneState goes out on the first look, on a change of state or occupancy, not otherwise."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 07:00"))
    first = agent.evaluate(at("2025-03-03 07:00"), bays(S1="free"))
    assert [s.state for s in first.states] == [ZoneOpenState.OPEN]
    state = first.states[0]
    assert state.window is not None and state.window.end.timestamp() == at("2025-03-03 09:30")
    assert state.next_transition is not None
    assert state.next_transition.timestamp() == at("2025-03-03 09:30")
    assert not agent.evaluate(at("2025-03-03 07:01"), bays(S1="free")).states
    moved = agent.evaluate(at("2025-03-03 07:02"), bays(S1="occupied"))
    assert [s.occupied for s in moved.states] == [1]
    # Trading in the window raises nothing.
    assert not events(moved, AlertRaised)


# --- violations and the ladder -------------------------------------------------------------


def test_zones_vendor_overstays_climbs_ladder_and_resolves(tmp_path: Path) -> None:
    """Stayed past close: warning after grace, escalated later, same id; leaving resolves."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 08:00"))
    vendor = bays(S1=("occupied", at("2025-03-03 06:05")))
    agent.evaluate(at("2025-03-03 08:00"), vendor)
    in_grace = agent.evaluate(at("2025-03-03 09:35"), vendor)
    assert not events(in_grace, AlertRaised)
    assert agent.violating("M1") == ["S1"]
    assert agent.next_deadline() == at("2025-03-03 09:40")

    warned = events(agent.evaluate(at("2025-03-03 09:40"), vendor), AlertRaised)
    assert len(warned) == 1
    alert = warned[0]
    assert (alert.alert_type.value, alert.severity, alert.step) == (
        "zone_overstay",
        Severity.WARNING,
        0,
    )
    assert (alert.zone_id, alert.bay_id) == ("M1", "S1")
    assert alert.since.timestamp() == at("2025-03-03 09:30")
    assert "morning market" in alert.message
    assert not events(agent.evaluate(at("2025-03-03 09:50"), vendor), AlertRaised)

    escalated = events(agent.evaluate(at("2025-03-03 09:55"), vendor), AlertRaised)
    assert [(a.alert_id, a.severity, a.step) for a in escalated] == [
        (alert.alert_id, Severity.ESCALATED, 1)
    ]
    assert agent.next_deadline() == at("2025-03-04 06:00")  # top of the ladder

    left = agent.evaluate(at("2025-03-03 10:20"), bays(S1=("free", at("2025-03-03 10:20"))))
    resolved = events(left, AlertResolved)
    assert [(r.alert_id, r.message) for r in resolved] == [(alert.alert_id, "space empty")]
    assert agent.violating("M1") == []
    assert not agent.alerts.alerts


def test_zones_vendor_leaving_in_grace_raises_nothing(tmp_path: Path) -> None:
    """Packing up within the grace period is what grace is for: no alert at all."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 09:00"))
    agent.evaluate(at("2025-03-03 09:00"), bays(S1=("occupied", at("2025-03-03 06:00"))))
    agent.evaluate(at("2025-03-03 09:32"), bays(S1=("occupied", at("2025-03-03 06:00"))))
    update = agent.evaluate(at("2025-03-03 09:38"), bays(S1=("free", at("2025-03-03 09:38"))))
    later = agent.evaluate(at("2025-03-03 12:00"), bays(S1=("free", at("2025-03-03 09:38"))))
    assert not events(update, AlertRaised) and not events(update, AlertResolved)
    assert not events(later, AlertRaised)


def test_zones_arrival_while_closed_gets_its_own_grace(tmp_path: Path) -> None:
    """A car arriving at 14:00 is 'occupied while closed', its grace counted from arrival."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 13:00"))
    arrived = at("2025-03-03 14:00")
    agent.evaluate(arrived, bays(S1=("occupied", arrived)))
    assert not events(agent.evaluate(arrived + 599, bays(S1=("occupied", arrived))), AlertRaised)
    raised = events(agent.evaluate(arrived + 600, bays(S1=("occupied", arrived))), AlertRaised)
    assert [(a.alert_type.value, a.since.timestamp()) for a in raised] == [
        ("bay_occupied_while_closed", arrived)
    ]
    assert raised[0].alert_id == alert_id_for("M1", "S1", arrived)


def test_zones_unknown_sensor_neither_escalates_nor_resolves(tmp_path: Path) -> None:
    """A silent sensor holds the alert where it is until the sensor vouches again."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 09:00"))
    occupied = bays(S1=("occupied", at("2025-03-03 07:00")))
    agent.evaluate(at("2025-03-03 09:00"), occupied)
    assert events(agent.evaluate(at("2025-03-03 09:45"), occupied), AlertRaised)
    silent = bays(S1=("unknown", at("2025-03-03 09:50")))
    quiet = agent.evaluate(at("2025-03-03 10:30"), silent)
    assert not quiet.events
    # The due step does not make the box spin: its deadline is not in the past.
    deadline = agent.next_deadline()
    assert deadline is None or deadline > at("2025-03-03 10:30")
    back = agent.evaluate(at("2025-03-03 10:31"), occupied)
    assert [(a.step, a.severity) for a in events(back, AlertRaised)] == [(1, Severity.ESCALATED)]


def test_zones_prohibited_kerb_is_always_closed(tmp_path: Path) -> None:
    """A prohibited kerb never opens; a car on it escalates after its short default grace."""
    config = zone_config(
        tmp_path,
        K1={"class": "prohibited", "bays": {"K001": {"sensor": "00C00001", "format": "nwave-nps"}}},
    )
    agent = ZoneAgent(config, data_dir=tmp_path, now=at("2025-03-03 07:00"))
    parked = at("2025-03-03 07:00")
    first = agent.evaluate(parked, bays(K001=("occupied", parked)))
    assert agent.state_name("K1") == "always_closed"
    assert first.states[0].state is ZoneOpenState.ALWAYS_CLOSED
    assert first.states[0].next_transition is None
    assert agent.display("K1", brightness=50).message is Message.NO_PARKING
    assert agent.display("K1", brightness=50).flashing
    raised = events(agent.evaluate(parked + 60, bays(K001=("occupied", parked))), AlertRaised)
    assert [(a.alert_type.value, a.severity) for a in raised] == [
        ("bay_occupied_while_closed", Severity.ESCALATED)
    ]
    later = agent.evaluate(parked + 660, bays(K001=("occupied", parked)))
    assert [a.severity for a in events(later, AlertRaised)] == [Severity.CRITICAL]


def test_zones_controlled_and_regulated_defaults_differ(tmp_path: Path) -> None:
    """Without a configured ladder, a controlled zone warns sooner and escalates sooner."""
    window = [{"days": WEEKDAYS, "start": "06:00", "end": "09:30"}]
    config = zone_config(
        tmp_path,
        C={"class": "controlled", "windows": window},
        R={"class": "regulated", "windows": window},
    )
    controlled, regulated = config.zones["C"], config.zones["R"]
    assert controlled.grace < regulated.grace
    assert controlled.ladder_steps()[-1][0] < regulated.ladder_steps()[-1][0]


# --- restart and clock steps ---------------------------------------------------------------


def test_zones_restart_mid_window_derives_state_without_events(tmp_path: Path) -> None:
    """A box started at 07:00 is open at once, with no transition event (none was seen)."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 07:00"))
    update = agent.evaluate(at("2025-03-03 07:00"), bays(S1="unknown"))
    assert agent.state_name("M1") == "open"
    assert not update.events
    assert [s.state for s in update.states] == [ZoneOpenState.OPEN]


def test_zones_restart_mid_violation_keeps_the_alert(tmp_path: Path) -> None:
    """After a restart the open alert carries on: same id, next step only, then resolves."""
    first = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 09:00"))
    vendor = bays(S1=("occupied", at("2025-03-03 06:00")))
    first.evaluate(at("2025-03-03 09:00"), vendor)
    raised = events(first.evaluate(at("2025-03-03 09:41"), vendor), AlertRaised)
    assert len(raised) == 1

    restarted_at = at("2025-03-03 09:45")
    second = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=restarted_at)
    boot = second.evaluate(restarted_at, bays(S1=("unknown", restarted_at)))
    assert not boot.events
    # The sensor speaks again: occupancy dates the car from now, the alert from 09:30.
    heard = bays(S1=("occupied", restarted_at + 5))
    assert not events(second.evaluate(restarted_at + 5, heard), AlertRaised)
    steps = events(second.evaluate(at("2025-03-03 09:55"), heard), AlertRaised)
    assert [(a.alert_id, a.step) for a in steps] == [(raised[0].alert_id, 1)]
    gone = second.evaluate(at("2025-03-03 10:00"), bays(S1=("free", at("2025-03-03 10:00"))))
    assert [r.alert_id for r in events(gone, AlertResolved)] == [raised[0].alert_id]

    third = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 10:05"))
    assert not third.evaluate(at("2025-03-03 10:05"), bays(S1="free")).events


def test_zones_restart_with_alert_when_zone_has_reopened_resolves_it(tmp_path: Path) -> None:
    """A box off overnight with an alert open resolves it when it finds the zone trading."""
    first = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 09:00"))
    vendor = bays(S1=("occupied", at("2025-03-03 06:00")))
    first.evaluate(at("2025-03-03 09:00"), vendor)
    raised = events(first.evaluate(at("2025-03-03 09:41"), vendor), AlertRaised)
    second = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-04 07:00"))
    update = second.evaluate(at("2025-03-04 07:00"), bays(S1="unknown"))
    resolved = events(update, AlertResolved)
    assert [(r.alert_id, r.message) for r in resolved] == [
        (raised[0].alert_id, "zone trading again")
    ]


def test_zones_clock_jump_forward_skips_to_the_step_due(tmp_path: Path) -> None:
    """An NTP step from 09:00 to 10:00: open -> closed in one transition, escalated at once."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 09:00"))
    vendor = bays(S1=("occupied", at("2025-03-03 06:00")))
    agent.evaluate(at("2025-03-03 09:00"), vendor)
    update = agent.evaluate(at("2025-03-03 10:00"), vendor)
    moves = [(t.from_state, t.to_state) for t in events(update, ZoneTransition)]
    assert moves == [(ZoneOpenState.OPEN, ZoneOpenState.CLOSED)]
    assert [(a.step, a.severity) for a in events(update, AlertRaised)] == [(1, Severity.ESCALATED)]


def test_zones_clock_jump_back_into_the_window_resolves(tmp_path: Path) -> None:
    """A step back from 10:00 to 09:00: the zone trades again, the open alert resolves."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 10:00"))
    vendor = bays(S1=("occupied", at("2025-03-03 06:00")))
    assert events(agent.evaluate(at("2025-03-03 10:00"), vendor), AlertRaised)
    update = agent.evaluate(at("2025-03-03 09:00"), vendor)
    moves = [(t.from_state, t.to_state) for t in events(update, ZoneTransition)]
    assert moves == [(ZoneOpenState.CLOSED, ZoneOpenState.OPEN)]
    assert len(events(update, AlertResolved)) == 1
    assert agent.next_deadline() == at("2025-03-03 09:15")


def test_zones_clock_jump_back_within_closed_keeps_the_alert(tmp_path: Path) -> None:
    """A small step back (still closed) neither resolves nor raises the alert again."""
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 10:00"))
    vendor = bays(S1=("occupied", at("2025-03-03 06:00")))
    agent.evaluate(at("2025-03-03 10:00"), vendor)
    update = agent.evaluate(at("2025-03-03 09:36"), vendor)
    assert not events(update, AlertRaised) and not events(update, AlertResolved)
    assert agent.violating("M1") == ["S1"]


# --- schedule documents --------------------------------------------------------------------


def document(version: int, effective: float, **changes: Any) -> ScheduleDocument:
    zone = {
        "zone_id": "M1",
        "zone_class": ZoneClass.REGULATED,
        "grace_s": 300,
        "weekly": (
            WeeklyWindow(
                days=tuple(Weekday(d) for d in WEEKDAYS),
                start=dt.time(5, 0),
                end=dt.time(10, 0),
            ),
        ),
        **changes,
    }
    return ScheduleDocument(
        version=version,
        effective_from=dt.datetime.fromtimestamp(effective, dt.UTC),
        timezone="Asia/Shanghai",
        zones=(ZoneSchedule(**zone),),
    )


def test_zones_schedule_applies_now_and_survives_restart(tmp_path: Path) -> None:
    """A version in force at once changes the windows and is kept on disk."""
    now = at("2025-03-03 09:35")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    agent.evaluate(now, bays(S1="free"))
    assert agent.state_name("M1") == "closing"
    assert agent.schedule_version == 0
    assert "in force" in agent.install(document(3, now - 60), now)
    update = agent.evaluate(now, bays(S1="free"))
    assert agent.state_name("M1") == "open"  # the new window runs to 10:00
    assert update.states[0].schedule_version == 3
    assert events(update, ZoneTransition)[0].schedule_version == 3
    again = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    assert again.schedule_version == 3
    again.evaluate(now, bays(S1="free"))
    assert again.state_name("M1") == "open"


def test_zones_schedule_waits_for_its_effective_time(tmp_path: Path) -> None:
    """A future version is staged, becomes a deadline, and takes over at its time."""
    now = at("2025-03-03 07:00")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    agent.evaluate(now, bays(S1="free"))
    effective = at("2025-03-03 08:00")
    assert "staged" in agent.install(document(2, effective), now)
    agent.evaluate(now + 1, bays(S1="free"))
    assert agent.schedule_version == 0
    assert agent.next_deadline() == effective
    agent.evaluate(effective, bays(S1="free"))
    assert agent.schedule_version == 2
    assert agent.schedules.previous is None  # the config's schedule was in force before


def test_zones_schedule_rollback_returns_to_previous(tmp_path: Path) -> None:
    """The replaced version is kept: rollback runs it again."""
    now = at("2025-03-03 07:00")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    agent.install(document(1, now), now)
    agent.install(document(2, now, grace_s=0), now)
    assert agent.schedule_version == 2
    assert agent.rollback() == 1
    assert agent.zones["M1"].rules.grace_s == 300


def test_zones_schedule_document_may_carry_ladder_and_lead(tmp_path: Path) -> None:
    """Ladder and closing-soon lead in the document replace the configured ones."""
    now = at("2025-03-03 07:00")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    ladder = (LadderStep(after_s=0, severity=Severity.INFO),)
    agent.install(document(1, now, ladder=ladder, closing_soon_s=60), now)
    rules = agent.zones["M1"].rules
    assert [(s.after_s, s.severity) for s in rules.ladder] == [(0, "info")]
    assert rules.closing_soon_s == 60


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        pytest.param(
            lambda now: document(1, now, zone_id="NOPE"), "no zone NOPE", id="unknown-zone"
        ),
        pytest.param(
            lambda now: document(1, now, zone_class=ZoneClass.PROHIBITED),
            "prohibited",
            id="prohibited-with-windows",
        ),
        pytest.param(
            lambda now: document(
                1,
                now,
                overrides=(
                    DateOverride(date=dt.date(2025, 3, 8)),
                    DateOverride(
                        date=dt.date(2025, 3, 8),
                        windows=(TimeWindow(start=dt.time(6), end=dt.time(7)),),
                    ),
                ),
            ),
            "overridden twice",
            id="duplicate-override",
        ),
        pytest.param(
            lambda now: document(
                1,
                now,
                ladder=(
                    LadderStep(after_s=600, severity=Severity.WARNING),
                    LadderStep(after_s=0, severity=Severity.ESCALATED),
                ),
            ),
            "in order",
            id="ladder-out-of-order",
        ),
        pytest.param(
            lambda now: document(1, now).model_copy(update={"timezone": "Mars/Olympus"}),
            "unknown time zone",
            id="unknown-timezone",
        ),
    ],
)
def test_zones_schedule_rejected(tmp_path: Path, doc: Any, reason: str) -> None:
    """A document the box cannot run is refused with a reason; the version stays."""
    now = at("2025-03-03 07:00")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    with pytest.raises(ScheduleRejected) as info:
        agent.install(doc(now), now)
    assert reason in info.value.reason
    assert agent.schedule_version == 0


def test_zones_schedule_versions_only_move_forward(tmp_path: Path) -> None:
    """The same document again is a no-op; an older or clashing one is refused."""
    now = at("2025-03-03 07:00")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=now)
    agent.install(document(5, now), now)
    assert "already held" in agent.install(document(5, now), now)
    with pytest.raises(ScheduleRejected, match="older"):
        agent.install(document(4, now), now)
    with pytest.raises(ScheduleRejected, match="different document"):
        agent.install(document(5, now, grace_s=1), now)


def test_zones_corrupt_store_falls_back_to_config(tmp_path: Path) -> None:
    """An unreadable schedule file is moved aside and the config's schedule runs."""
    (tmp_path / "zone-schedule.json").write_text("{not json")
    agent = ZoneAgent(zone_config(tmp_path), data_dir=tmp_path, now=at("2025-03-03 07:00"))
    assert agent.schedule_version == 0
    assert (tmp_path / "zone-schedule.json.corrupt").exists()


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "signs", "path"),
    [
        pytest.param(
            {
                "K": {
                    "class": "prohibited",
                    "windows": [{"days": ["mon"], "start": "06:00", "end": "07:00"}],
                }
            },
            {},
            "zones.K",
            id="prohibited-with-windows",
        ),
        pytest.param(
            {
                "M": {
                    "class": "regulated",
                    "ladder": [
                        {"after_s": 60, "severity": "warning"},
                        {"after_s": 0, "severity": "escalated"},
                    ],
                }
            },
            {},
            "zones.M",
            id="ladder-out-of-order",
        ),
        pytest.param(
            {"M": {"class": "regulated", "messages": {"closed": "party_time"}}},
            {},
            "zones.M.messages.closed",
            id="unknown-message",
        ),
        pytest.param(
            {"M": {"class": "regulated"}},
            {"W": {"unit": 1, "profile": "parkgrid-warning", "zone": "Q"}},
            "sign_buses.b.signs.W.zone",
            id="sign-names-missing-zone",
        ),
        pytest.param(
            {
                "M": {
                    "class": "regulated",
                    "bays": {"B1": {"sensor": "00D00001", "format": "nwave-nps"}},
                }
            },
            {},
            "zones.M.bays.B1",
            id="bay-id-shared-with-lot",
        ),
        pytest.param(
            {
                "M": {
                    "class": "regulated",
                    "bays": {"S9": {"sensor": "00A00001", "format": "nwave-nps"}},
                }
            },
            {},
            "zones.M.bays.S9.sensor",
            id="sensor-shared-with-lot",
        ),
    ],
)
def test_zones_config_problems_name_their_path(
    tmp_path: Path, zones: dict[str, Any], signs: dict[str, Any], path: str
) -> None:
    """Zone mistakes in the config file are reported with their dotted path."""
    data: dict[str, Any] = {
        "site": "xigang",
        "box_id": "b",
        "data_dir": str(tmp_path),
        "serial": {"c": {"device": "/dev/x", "protocol": "concentrator"}},
        "lots": {"P1": {"bays": {"B1": {"sensor": "00A00001", "format": "nwave-nps"}}}},
        "zones": zones,
    }
    if signs:
        data["sign_buses"] = {"b": {"transport": "tcp", "host": "h", "signs": signs}}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert path in [p.path for p in info.value.problems], info.value.problems
