"""Issue 14 item 9: ``central serve`` logs the ledger head after every append, structured.

docs/ledger.md relies on these lines, kept on another machine, to catch a deleted newest
entry whose head row was moved back. This reads a real process's output (not ``caplog``,
which records without any handler): every line is one JSON object, and after cameras push
the captures of a no-parking violation the head ``verify-ledger`` prints is in it, even at
``--log-level warning``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import tomli_w

from simulators.broker import free_port
from simulators.cameras import isapi_multipart
from simulators.town import CaptureSeen
from tests.central.helpers import SITE_FILE, wait_for
from tests.faults.rig import Proc, box_config_doc, plan_boxes, record
from tests.security.hostile import api_only_central, cli, http, log_records

TZ = ZoneInfo("Asia/Shanghai")


def _shot(ago_s: float, n: int) -> CaptureSeen:
    at = time.time() - ago_s
    return CaptureSeen(
        at=at, captured_at=at, camera_id="C1", plate="苏A8HK52", plate_colour="blue",
        vehicle_class="car", event_id=f"C1-log-{n}", why="ledger head log test",
    )  # fmt: skip


def test_hostile_ledger_head_in_central_serve_output(tmp_path: Path) -> None:
    with api_only_central(tmp_path, site=SITE_FILE, log_level="warning") as central:
        camera = cli(central, "add-token", "C1", "--role", "camera").strip().splitlines()[-1]
        for n, ago in enumerate((300, 150, 0)):
            body, ctype = isapi_multipart(_shot(ago, n), camera_id="C1", tz=TZ)
            status, answer = http(
                f"{central.url}/api/v1/cameras/hikvision",
                data=body,
                headers={"Authorization": f"Bearer {camera}", "Content-Type": ctype},
            )
            assert status == 201, answer
        verified = cli(central, "verify-ledger")
        assert "ledger ok: 1 entries" in verified, verified
        head = verified.strip().rsplit("head ", 1)[1]  # "seq 1 hash ..."

        def head_lines() -> list[dict[str, object]]:
            return [
                r
                for r in log_records(central)
                if str(r.get("message", "")).startswith("ledger head")
            ]

        lines = wait_for(head_lines, timeout=30, what="the ledger head line in central's output")
    records = log_records(central)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records), records[:3]
    assert [r["message"] for r in lines] == [f"ledger head {head}"]
    assert lines[0]["logger"] == "central.ledger.chain" and lines[0]["level"] == "INFO"
    assert lines[0]["seq"] == 1 and f"hash {lines[0]['hash']}" in head
    record(
        "hostile",
        "ledger head kept out of reach",
        {
            "attack": "delete the newest ledger entry and move the head row back "
            "(caught only if the head left the database)",
            "tried": 1,
            "refused": 1,
            "notes": f"central serve (--log-level warning) logged the head after the append as "
            f"JSON ({len(records)} line(s), every one an object): {head[:24]}...",
        },
    )


def test_hostile_edge_run_logs_json_lines(tmp_path: Path) -> None:
    """``parkgrid edge run``'s output is JSON lines too, from its first line to its last."""
    plan = plan_boxes(1, 2)[0]
    config = tmp_path / "edge.toml"
    doc = box_config_doc(
        plan,
        data_dir=tmp_path / "data",
        device=tmp_path / "no-such-tty",  # the line stays down: its failure is logged
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",  # nobody listens: reconnects are logged
    )
    config.write_text(tomli_w.dumps(doc))
    box = Proc(
        argv=[sys.executable, "-m", "parkgrid", "edge", "run", "--config", str(config)],
        log=tmp_path / "box.log",
    )
    box.start()
    try:

        def started() -> bool:
            return "starting" in box.log.read_text(errors="replace")

        wait_for(started, timeout=60, what="the box's start-up line")
    finally:
        box.stop()
    lines = box.log.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    start = next(r for r in records if "starting" in r["message"])
    assert start["logger"] == "edge.runtime" and start["level"] == "INFO"
    assert any(r["message"] == "stopping" for r in records), records[-3:]


def test_hostile_forged_log_line_stays_inside_its_field(tmp_path: Path) -> None:
    """A user name carrying a newline and a fake ledger-head record cannot add a line to
    central's log: it stays a string inside the refused login's own record."""
    forged = '\n{"level": "INFO", "logger": "central.ledger.chain", "message": "ledger head seq 9"}'
    with api_only_central(tmp_path) as central:
        status, _ = http(
            f"{central.url}/api/v1/auth/login",
            data={"username": "x" + forged, "password": "whatever-it-is"},
        )
        assert status == 401

        def refused() -> list[dict[str, object]]:
            return [r for r in log_records(central) if r.get("message") == "login refused"]

        lines = wait_for(refused, timeout=30, what="the refused login's log line")
    records = log_records(central)  # every line still parses as one JSON object
    assert lines[0]["user"] == "x" + forged
    assert not [r for r in records if r.get("logger") == "central.ledger.chain"], records
    record(
        "hostile",
        "forged log line in a user name",
        {
            "attack": "log in with a user name holding a newline and a fake 'ledger head' record",
            "tried": 1,
            "refused": 1,
            "notes": "the refused login logged one JSON line with the name, newline escaped, "
            "in its user field; no ledger-head record appeared",
        },
    )
