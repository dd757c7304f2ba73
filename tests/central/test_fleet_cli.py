"""``parkgrid central fleet``: what it says when it cannot act (the push itself, with a broker
and a box: tests/edge/test_config_push.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.central.helpers import SITE_FILE


def _fleet(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PARKGRID_DATABASE_URL": f"sqlite:///{tmp_path / 'central.db'}",
        "PARKGRID_SITE_FILE": str(SITE_FILE),
        "PARKGRID_MQTT_URL": "mqtt://127.0.0.1:9",  # nothing listens: nothing may be sent
    }
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", "fleet", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_fleet_cli_refuses_an_unknown_box_and_a_missing_broker_sends_nothing(
    tmp_path: Path,
) -> None:
    unknown = _fleet(tmp_path, "config", "push", "--box", "box-x")
    assert unknown.returncode == 2
    assert "no box 'box-x'" in unknown.stderr and "box-p1" in unknown.stderr
    no_broker = _fleet(tmp_path, "config", "push", "--all")
    assert no_broker.returncode == 1 and "nothing sent" in no_broker.stderr
    rows = json.loads(_fleet(tmp_path, "status", "--json").stdout)
    assert {row["box_id"]: row["state"] for row in rows} == dict.fromkeys(
        ["box-p1", "box-p2", "box-s1"], "pending"
    )
    assert all(row["desired_version"] is None for row in rows)  # no push was recorded
    missing = _fleet(tmp_path, "status", "--site", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and "none.toml" in missing.stderr
