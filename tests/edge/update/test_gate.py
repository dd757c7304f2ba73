"""The health gate over the box's own health page (edge.health_http, served for real)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.box_health import box_metrics, health_report
from edge.health_http import HealthReport, HealthServer, Metric, render_metrics
from edge.update.gate import confirm, gate_failures
from simulators.broker import MosquittoBroker
from simulators.signs import Fault
from tests.edge.test_box_end_to_end import eventually, rig
from tests.edge.update.test_boot_check import make_box, on_trial


def metrics(*, line_up: float = 1, frames: float = 12, sign_up: float = 1) -> list[Metric]:
    line = {"box": "box-p1", "line": "conc"}
    sign = {"box": "box-p1", "bus": "bus1", "sign": "S1", "unit": "1"}
    return [
        Metric(name="parkgrid_edge_serial_up", kind="gauge", help="up", samples=[(line, line_up)]),
        Metric(
            name="parkgrid_edge_serial_observations_total",
            kind="counter",
            help="observations",
            samples=[(line, frames)],
        ),
        Metric(name="parkgrid_edge_sign_up", kind="gauge", help="up", samples=[(sign, sign_up)]),
    ]


def test_the_gate_names_each_thing_that_is_not_healthy() -> None:
    assert gate_failures({"mqtt_connected": True}, render_metrics(metrics())) == []
    failures = gate_failures(
        {"mqtt_connected": False}, render_metrics(metrics(line_up=0, frames=0, sign_up=0))
    )
    assert failures == [
        "not connected to the broker",
        "serial line conc is down",
        "no sensor heard on serial line conc",
        "sign S1 does not answer (not read back)",
    ]


class Page:
    """The box's real health responder, on a free port, in a thread of its own."""

    def __init__(self) -> None:
        self.connected = False
        self.loop = asyncio.new_event_loop()
        self.server = HealthServer(
            listen="127.0.0.1:0",
            health=lambda: HealthReport(
                ok=self.connected, detail={"mqtt_connected": self.connected}
            ),
            metrics=metrics,
        )
        self.loop.run_until_complete(self.server.start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.server.bound_port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


@pytest.fixture
def page() -> Iterator[Page]:
    served = Page()
    yield served
    served.close()


def test_confirm_makes_the_trial_good_once_the_gate_passes(tmp_path: Path, page: Page) -> None:
    layout = make_box(tmp_path, current="b")
    on_trial(layout, boots=1, since=1.0)
    page.connected = True
    assert confirm(layout, page.listen, say=lambda _: None, clock=lambda: 2.0)
    state = layout.load()
    assert state.good == "b" and state.trial is None
    assert state.history[-1]["event"] == "confirmed"


def test_confirm_gives_up_at_the_deadline_and_records_why(tmp_path: Path, page: Page) -> None:
    layout = make_box(tmp_path, current="b")
    on_trial(layout, boots=1, since=1.0)  # confirm within 60 s of t=1
    ticks = iter([2.0, 30.0, 62.0])
    assert not confirm(layout, page.listen, say=lambda _: None, clock=lambda: next(ticks))
    trial = layout.load().trial
    assert trial is not None and trial.gate_failed == "not connected to the broker"


def test_confirm_with_nothing_on_trial_returns_at_once(tmp_path: Path) -> None:
    layout = make_box(tmp_path, current="a")
    assert confirm(layout, "127.0.0.1:9", say=lambda _: None)


async def test_the_gate_reads_what_a_real_box_reports(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """On a box with a concentrator and a sign (real simulators): no gate while its sensors
    are silent, the gate once one is heard; a renamed metric would fail here, not pass."""
    async with rig(tmp_path, mosquitto) as r:
        await eventually(lambda: all(r.box.buses[b].status(s).up for b in r.box.buses
                                     for s in r.box.buses[b].sign_ids), within=60)  # fmt: skip

        def failures() -> list[str]:
            report = health_report(r.box.health_sources)
            return gate_failures(report.detail, render_metrics(box_metrics(r.box.health_sources)))

        assert failures() == ["no sensor heard on serial line conc"]
        await r.sim.send_status("00A10001", occupied=False)
        await eventually(lambda: failures() == [], within=60)
        r.signs.inject(1, Fault.SILENT)  # the sign stops answering the box's reads
        await eventually(
            lambda: failures() == ["sign S1 does not answer (not read back)"], within=60
        )
