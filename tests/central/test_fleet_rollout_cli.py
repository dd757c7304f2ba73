"""``parkgrid central fleet rollout|rollouts|halt|resume|rollback`` as an admin runs them on
central's host (the engine that then sends the commands: tests/central/test_fleet_rollouts.py)."""

from __future__ import annotations

import getpass
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from central.db import schema as t
from central.db.engine import make_engine
from parkgrid.cli import main
from tests.central.helpers import SITE_FILE
from tests.central.rollout_support import store_releases


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _fleet(tmp_path: Path, *args: str) -> Ran:
    """``parkgrid central fleet ARGS`` in this process (the first one as a real process)."""
    env = {
        "PARKGRID_DATABASE_URL": f"sqlite:///{tmp_path / 'central.db'}",
        "PARKGRID_SITE_FILE": str(SITE_FILE),
        "PARKGRID_RELEASES_DIR": str(tmp_path / "releases"),
    }
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["central", "fleet", *args])
    return Ran(code, out.getvalue(), err.getvalue())


def test_the_rollout_command_runs_as_a_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PARKGRID_DATABASE_URL": f"sqlite:///{tmp_path / 'central.db'}",
        "PARKGRID_SITE_FILE": str(SITE_FILE),
        "PARKGRID_RELEASES_DIR": str(tmp_path / "releases"),
    }
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", "fleet", "rollout", "1.1.0", "--town",
         "testtown"], capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert ran.returncode == 2 and "release '1.1.0' is not stored" in ran.stderr


def test_the_rollout_commands_start_show_halt_and_refuse_bad_input(tmp_path: Path) -> None:
    store_releases(tmp_path / "releases", tmp_path, {"1.1.0": False})
    unknown = _fleet(tmp_path, "rollout", "9.9.9", "--town", "testtown", "--share", "0")
    assert unknown.returncode == 2 and "share: 0 %" in unknown.stderr, unknown.stderr
    for args, says in (
        (("rollout", "9.9.9", "--town", "testtown"), "release '9.9.9' is not stored"),
        (("rollout", "1.1.0", "--town", "elsewhere"), "no town 'elsewhere'"),
        (("rollout", "1.1.0"), "give one VERSION and --town T"),
    ):
        refused = _fleet(tmp_path, *args)
        assert refused.returncode == 2 and says in refused.stderr, (args, refused.stderr)
    started = _fleet(tmp_path, "rollout", "1.1.0", "--town", "testtown", "--share", "50",
                     "--window", "01:00-04:00", "--json")  # fmt: skip
    assert started.returncode == 0, started.stderr
    rollout = json.loads(started.stdout)
    assert (rollout["state"], rollout["share"], rollout["window"]) == ("running", 50, "01:00-04:00")
    assert [b["state"] for b in rollout["boxes"]] == ["waiting"] * 3
    halted = _fleet(tmp_path, "halt", str(rollout["id"]))
    assert halted.returncode == 0 and "halted" in halted.stdout, halted.stderr
    again = _fleet(tmp_path, "halt", str(rollout["id"]))
    assert again.returncode == 2 and "not running; nothing changed" in again.stderr
    shown = _fleet(tmp_path, "rollout", "status", str(rollout["id"]))
    assert shown.returncode == 0 and f"halted by cli:{getpass.getuser()}" in shown.stdout
    assert "box-p1" in shown.stdout and "canary" in shown.stdout
    listed = _fleet(tmp_path, "rollouts")
    assert "1.1.0" in listed.stdout and "3 waiting" in listed.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'central.db'}")
    with engine.connect() as conn:
        audit = conn.execute(select(t.audit.c.actor, t.audit.c.action)).all()
    engine.dispose()
    actor = f"cli:{getpass.getuser()}"
    assert [tuple(r) for r in audit] == [(actor, "fleet.rollout"), (actor, "fleet.rollout-halt")]
