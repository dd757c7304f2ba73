"""A power cut (kill -9) at each step of ``parkgrid edge update`` on a really installed box.

After each cut the box "powers up": the unit's boot check runs from ``<prefix>/current``, then
the release it leaves must work: its ``edge run`` starts and connects to a real Mosquitto.
A cut before the switch leaves the old release; a cut after it leaves the new one on trial,
which, never confirmed, the boot check takes back after its starts run out. Then the update
is run again to the end. The kill lands when the step has begun, anywhere inside it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from edge.update.slots import Layout
from simulators.broker import MosquittoBroker, free_port
from tests.edge.update.conftest import ENV, Kit, run, update

pytestmark = [pytest.mark.slow, pytest.mark.long]
STEPS = ("verify", "disk", "unpack", "slot", "trial", "switch")


def cut_at(prefix: Path, bundle: Path, kit: Kit, step: int) -> None:
    parkgrid = str(prefix / "current" / "bin" / "parkgrid")
    process = subprocess.Popen(
        [parkgrid, "edge", "update", "--from", str(bundle), "--prefix", str(prefix),
         "--key", str(kit.public), "--max-boots", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
    )  # fmt: skip
    assert process.stdout is not None
    said = []
    for line in process.stdout:
        said.append(line)
        if line.startswith(f"update: step {step}/6"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "".join(said)


def power_up(prefix: Path) -> str:
    """The boot check as the unit runs it, then the version of the release it starts."""
    current = str(prefix / "current" / "bin" / "parkgrid")
    run([current, "edge", "boot-check", "--prefix", str(prefix)])
    return run([str(prefix / "current" / "bin" / "parkgrid"), "--version"]).stdout.strip()


def runs_and_connects(prefix: Path, config: Path, listen: str) -> bool:
    """``edge run`` of the current release, until its health page says it is connected."""
    box = subprocess.Popen([str(prefix / "current/bin/parkgrid"), "edge", "run", "--config",
                            str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=ENV)  # fmt: skip
    try:
        deadline = time.monotonic() + 240  # a bound for a loaded machine, not a figure
        while time.monotonic() < deadline and box.poll() is None:
            try:
                with urllib.request.urlopen(f"http://{listen}/healthz", timeout=2) as page:
                    if json.loads(page.read())["mqtt_connected"]:
                        return True
            except OSError:
                pass
            time.sleep(0.3)
        return False
    finally:
        box.terminate()
        box.wait(30)


def test_a_power_cut_at_each_update_step_leaves_a_box_that_starts_a_working_release(
    box: Path, kit: Kit, tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    bundle = kit.bundle("1.0.1")
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "edge.toml"
    config.write_text(
        f'site = "xigang"\nbox_id = "box-p1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nurl = "{mosquitto.url}"\n[health]\nlisten = "{listen}"\n'
    )
    layout = Layout(box)
    for step, name in enumerate(STEPS, start=1):
        cut_at(box, bundle, kit, step)
        version = power_up(box)
        assert runs_and_connects(box, config, listen), name
        trial = layout.load().trial
        if version == "1.0.1":  # the cut came after the switch (only possible from "trial" on)
            assert name in ("trial", "switch") and trial is not None and trial.boots == 1
            while version == "1.0.1":  # it crashes on start, say: each start counts
                version = power_up(box)
            assert layout.load().history[-1]["event"] == "rolled back"
        assert version == "1.0.0", name
        assert layout.load().trial is None, name
    update(box, bundle, kit)
    assert power_up(box) == "1.0.1"
    assert runs_and_connects(box, config, listen)
    trial = layout.load().trial
    assert trial is not None and trial.slot == "b" and trial.from_slot == "a"
