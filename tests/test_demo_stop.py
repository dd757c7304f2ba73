"""The demo stops its processes in order: boxes, then central, then the broker (finding 9)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from parkgrid.demo import Processes, exit_words

CHILD = """
import signal, sys, time
name, log = sys.argv[1], sys.argv[2]
def stop(*_):
    with open(log, "a") as out:
        out.write(f"term {name}\\n")
    time.sleep(0.3)  # a shutdown that takes a while: the next stage must wait for it
    with open(log, "a") as out:
        out.write(f"exit {name}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
with open(log, "a") as out:
    out.write(f"up {name}\\n")
while True:
    time.sleep(0.05)
"""


def test_demo_stops_boxes_then_central_then_the_broker(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    procs = Processes(logs=tmp_path)
    for name in ("broker", "central", "box-p1", "box-p2"):
        procs.start(name, [sys.executable, str(script), name, str(log)])
    deadline = time.monotonic() + 60
    while log.read_text().count("up ") < 4 if log.exists() else True:
        assert time.monotonic() < deadline, "children did not start"
        time.sleep(0.05)
    ran = procs.stop_all(grace_s=20)
    lines = log.read_text().split("\n")
    order = [line for line in lines if line.startswith(("term", "exit"))]
    boxes_done = max(order.index("exit box-p1"), order.index("exit box-p2"))
    assert boxes_done < order.index("term central")
    assert order.index("exit central") < order.index("term broker")
    assert [rc for _, _, rc in ran] == [0, 0, 0, 0]


def test_exit_words_name_a_graceful_sigterm() -> None:
    assert "stopped by SIGTERM" in exit_words(-15)
    assert exit_words(0) == "exit 0"
