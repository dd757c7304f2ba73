"""A release that starts but fails its health gate is rolled back by the boot check alone.

A real box: 1.0.0 installed in slot a, run by the unit stand-in (boot check, ``edge run``,
``edge confirm``, restarts) against a real Mosquitto. 1.0.1 is installed while it runs, the
unit restarted, and the gate confirms it. Then 1.0.2, built from a copy of this checkout whose
box never reports the broker connected: it starts, its confirm gives up at the end of its
window, the unit restarts, and the boot check goes back to 1.0.1 and says why. No one touches
the box after ``systemctl restart``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.update.slots import Layout
from simulators.broker import MosquittoBroker, free_port
from tests.edge.update.conftest import Kit, update
from tests.edge.update.unit_standin import UnitStandin

pytestmark = [pytest.mark.slow, pytest.mark.long]
WAIT_S = 480  # a bound for a loaded CI machine, not a measured figure


def never_connected(source: Path) -> None:
    health = source / "edge" / "box_health.py"
    text = health.read_text()
    assert '"mqtt_connected": parts.network_up(),' in text
    health.write_text(
        text.replace('"mqtt_connected": parts.network_up(),', '"mqtt_connected": False,')
    )


def eventually(condition: Callable[[], object], what: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, (
            f"{what}: not within {WAIT_S} s\n" + log.read_text()[-4000:]
        )
        time.sleep(0.5)


def connected(listen: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{listen}/healthz", timeout=2) as page:
            return bool(json.loads(page.read())["mqtt_connected"])
    except OSError:
        return False


def last_event(layout: Layout) -> dict[str, object]:
    history = layout.load().history
    return history[-1] if history else {}


def test_a_release_that_fails_its_health_gate_goes_back_by_itself(
    box: Path, kit: Kit, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "edge.toml"
    config.write_text(
        f'site = "xigang"\nbox_id = "box-p1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nurl = "{mosquitto.url}"\n[health]\nlisten = "{listen}"\n'
    )
    layout, log = Layout(box), tmp_path / "unit.log"
    bad = kit.bundle("1.0.2", patch=never_connected)
    with UnitStandin(box, config, log) as unit:
        update(box, kit.bundle("1.0.1"), kit, "--confirm-within", "400")
        unit.restart()
        eventually(lambda: last_event(layout).get("event") == "confirmed", "1.0.1 confirmed", log)
        assert layout.slot_version(layout.current_slot() or "") == "1.0.1"

        update(box, bad, kit, "--confirm-within", "8")
        unit.restart()
        eventually(lambda: last_event(layout).get("event") == "rolled back", "rolled back", log)
        event = last_event(layout)
        assert event["version"] == "1.0.2"
        assert "not connected to the broker" in str(event["reason"])
        assert layout.slot_version(layout.current_slot() or "") == "1.0.1"

        # and the release it went back to runs and reports the broker connected
        eventually(lambda: connected(listen), "1.0.1 running again", log)
    assert "rolled back from 1.0.2" in log.read_text()


def crashes_on_start(source: Path) -> None:
    runtime = source / "edge" / "runtime.py"
    runtime.write_text(runtime.read_text() + '\nraise RuntimeError("a bug met at start")\n')


def test_a_release_that_crashes_on_start_goes_back_after_its_starts(
    box: Path, kit: Kit, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    """``edge run`` of 1.0.3 dies at once (its runtime raises on import); the boot check and
    the confirm still run (they do not import it). After --max-boots starts, back to 1.0.0."""
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "edge.toml"
    config.write_text(
        f'site = "xigang"\nbox_id = "box-p1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nurl = "{mosquitto.url}"\n[health]\nlisten = "{listen}"\n'
    )
    layout, log = Layout(box), tmp_path / "unit.log"
    update(box, kit.bundle("1.0.3", patch=crashes_on_start), kit, "--max-boots", "2")
    with UnitStandin(box, config, log) as unit:
        eventually(lambda: last_event(layout).get("event") == "rolled back", "rolled back", log)
        assert unit.starts >= 2
        eventually(lambda: connected(listen), "1.0.0 running again", log)
    event = last_event(layout)
    assert event["version"] == "1.0.3"
    assert "started 2 times without being confirmed" in str(event["reason"])
    assert layout.slot_version(layout.current_slot() or "") == "1.0.0"
    assert log.read_text().count("a bug met at start") >= 2
