"""The whole town, end to end: `parkgrid demo --duration 90 --speed 120 --seed 7`, headless.

Every part is the real thing, in its own process where it has one: mosquitto, central
(SQLite), seven edge boxes reading sensor frames from ptys and driving Modbus signs, the
camera simulator posting to central, and the town's plan playing the day. The demo runs
with ``--hold``: when the town stops it writes ``truth.json`` and keeps everything up, the
test checks central and the broker against the truth, then stops it with Ctrl-C (SIGINT)
and checks that no process it started is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from simulators.broker import free_port

# The whole town for 90 s of wall time: `make test-long` (CI runs it), not `make test`.
pytestmark = pytest.mark.long

ROOT = Path(__file__).resolve().parents[1]
DURATION_S = 90
STARTUP_S = 150  # central, seven boxes and the allowance, on a busy 2-core machine


def eventually(check: Callable[[], Any], *, within: float, what: str) -> Any:
    """Retry ``check`` until it returns a truthy value or raises no AssertionError."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (AssertionError, httpx.HTTPError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(1.0)
    raise AssertionError(f"{what}: not within {within:.0f} s (last: {last!r})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    run_dir = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {**os.environ, "PARKGRID_DEMO_LOCK": str(run_dir / "demo.lock")}
    argv = [sys.executable, "-m", "parkgrid", "demo", "--duration", str(DURATION_S),
            "--speed", "120", "--seed", "7", "--headless", "--hold",
            "--run-dir", str(run_dir / "run"), "--port", str(port)]  # fmt: skip
    log = open(run_dir / "demo.out", "wb")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    state: dict[str, Any] = {"proc": proc, "run_dir": run_dir / "run", "env": env, "port": port}
    try:
        truth_file = run_dir / "run" / "truth.json"

        def town_done() -> bool:
            assert proc.poll() is None, (run_dir / "demo.out").read_text()
            return truth_file.exists()

        eventually(town_done, within=STARTUP_S + DURATION_S, what="the town's day")
        state["truth"] = json.loads(truth_file.read_text())
        state["demo"] = json.loads((run_dir / "run" / "demo.json").read_text())
        url = state["demo"]["url"]
        token = httpx.post(f"{url}/api/v1/auth/login", data=state["demo"]["login"]).json()
        state["headers"] = {"Authorization": f"Bearer {token['access_token']}"}
        state["url"] = url
        yield state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        state["exit"] = proc.returncode
        state["out"] = (run_dir / "demo.out").read_text(errors="replace")


def test_demo_every_box_online_in_central_and_on_the_broker(demo: dict[str, Any]) -> None:
    """Central lists every box of the site online; each box's retained status says online."""
    boxes = demo["demo"]["boxes"]

    def all_online() -> bool:
        listed = httpx.get(f"{demo['url']}/api/v1/boxes", headers=demo["headers"]).json()
        online = {b["id"] for b in listed if b["online"]}
        assert online == set(boxes), f"offline: {set(boxes) - online}"
        return True

    eventually(all_online, within=30, what="every box online in central")

    seen: dict[str, dict[str, Any]] = {}
    done = threading.Event()
    host, port = demo["demo"]["broker"].split("://")[1].split(":")

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        box_id = message.topic.split("/")[3]
        seen[box_id] = json.loads(message.payload)
        if set(seen) >= set(boxes):
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    # The demo's broker runs the field configuration: central's user reads everything.
    client.username_pw_set(demo["demo"]["mqtt"]["username"], demo["demo"]["mqtt"]["password"])
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("parkgrid/v1/xigang/+/status", qos=1)
    client.connect(host, int(port))
    client.loop_start()
    try:
        assert done.wait(20), f"retained status of {sorted(set(boxes) - set(seen))} missing"
    finally:
        client.loop_stop()
        client.disconnect()
    states = {box: body["state"] for box, body in seen.items() if box in boxes}
    assert states == dict.fromkeys(boxes, "online")


def test_demo_broker_refuses_anonymous_clients_while_the_boxes_are_online(
    demo: dict[str, Any],
) -> None:
    """The demo runs the field configuration: the boxes are in with the passwords and ACL
    provision-box made; mosquitto_sub without credentials is refused at CONNECT."""
    boxes = demo["demo"]["boxes"]
    listed = httpx.get(f"{demo['url']}/api/v1/boxes", headers=demo["headers"]).json()
    assert {b["id"] for b in listed if b["online"]} == set(boxes)
    host, port = demo["demo"]["broker"].split("://")[1].split(":")
    ran = subprocess.run(
        ["mosquitto_sub", "-h", host, "-p", port, "-t", "parkgrid/#", "-C", "1", "-W", "5"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert ran.returncode != 0 and not ran.stdout, ran.stdout
    assert "not authori" in ran.stderr.lower(), ran.stderr
    run_dir = Path(demo["demo"]["run_dir"])
    password_file = run_dir / "boxes" / boxes[0] / "mqtt-password"
    assert password_file.stat().st_mode & 0o777 == 0o600


def test_demo_lot_figures_add_up_and_match_the_truth(demo: dict[str, Any]) -> None:
    """Per lot free + occupied + unknown + closed is the capacity and the simulation's truth."""
    truth = demo["truth"]["lots"]
    assert demo["truth"]["finished"]

    def matches() -> bool:
        lots = {lot["id"]: lot for lot in httpx.get(f"{demo['url']}/api/v1/lots").json()["lots"]}
        assert set(lots) == set(truth)
        for lot_id, lot in lots.items():
            total = lot["free"] + lot["occupied"] + lot["unknown"] + lot["closed"]
            assert total == lot["capacity"] == truth[lot_id]["capacity"], lot
            got = {k: lot[k] for k in ("free", "occupied", "unknown", "closed")}
            want = {k: truth[lot_id][k] for k in ("free", "occupied", "unknown", "closed")}
            assert got == want, f"{lot_id}: central {got}, simulation {want}"
        return True

    eventually(matches, within=45, what="central's lots equal the simulation's truth")


def test_demo_raised_a_stall_zone_alert(demo: dict[str, Any]) -> None:
    """A vendor stayed past close and grace: the stall box raised a zone alert."""
    alerts = httpx.get(f"{demo['url']}/api/v1/alerts", headers=demo["headers"]).json()
    assert any(a["zone_id"] and a["alert_type"].startswith("zone") for a in alerts), alerts


def test_demo_ledger_has_violations_and_a_tow_and_verifies(demo: dict[str, Any]) -> None:
    """No-parking and truck-ban violations, a towing case, and a hash chain that verifies."""
    url, headers = demo["url"], demo["headers"]
    assert demo["truth"]["stats"]["capture_failures"] == 0, demo["truth"]["stats"]

    def ledger_complete() -> bool:
        entries = httpx.get(f"{url}/api/v1/ledger", headers=headers).json()
        rules = {e.get("rule_id") for e in entries}
        assert "no_parking" in rules, rules
        assert "truck_ban" in rules, rules
        cases = httpx.get(f"{url}/api/v1/cases", headers=headers).json()
        tows = [e for e in entries if e.get("kind") == "tow"]
        tows += [c for c in cases if "tow" in json.dumps(c).lower()]
        assert tows, "no towing case"
        return True

    eventually(ledger_complete, within=30, what="the ledger's violations and tow")
    verify = httpx.get(f"{url}/api/v1/ledger/verify", headers=headers).json()
    assert verify["ok"] and verify["entries"] > 0, verify


def test_demo_second_run_says_one_is_running(demo: dict[str, Any]) -> None:
    """A second demo on the same port names the running one instead of failing on the port."""
    result = subprocess.run(
        [sys.executable, "-m", "parkgrid", "demo", "--port", str(demo["port"]), "--headless"],
        cwd=ROOT, env=demo["env"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "already running" in result.stderr and str(demo["proc"].pid) in result.stderr


def test_demo_stops_every_process_it_started(demo: dict[str, Any]) -> None:
    """Ctrl-C stops the demo cleanly and leaves none of its processes running."""
    proc = demo["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    pids = [p["pid"] for p in demo["demo"]["processes"]]
    assert len(pids) >= 1 + 1 + len(demo["demo"]["boxes"])  # broker, central, boxes
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in pids if _alive(pid)] == []
    final = json.loads((demo["run_dir"] / "demo.json").read_text())
    assert final["phase"] == "stopped" and len(final["ran"]) == len(pids)
