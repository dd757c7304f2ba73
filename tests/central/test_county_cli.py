"""``parkgrid central serve --county`` refuses a bad county before serving; users by town."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.central.county_support import town_toml, write_county

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        input=stdin,
    )


def test_county_serve_refuses_a_county_with_a_shared_id(tmp_path: Path) -> None:
    clash = town_toml("south").replace("SP1-1", "NP1-1")  # a bay in both towns
    county = write_county(tmp_path, towns={"north": town_toml("north"), "south": clash})
    out = run("serve", "--county", str(county), "--database-url", f"sqlite:///{tmp_path}/c.db")
    assert out.returncode == 2, out.stderr
    assert "bays id 'NP1-1' is defined by both town 'north' and town 'south'" in out.stderr


def test_county_serve_takes_a_site_or_a_county_not_both(tmp_path: Path) -> None:
    county = write_county(tmp_path)
    site = tmp_path / "towns" / "north.toml"
    db = f"sqlite:///{tmp_path}/c.db"
    out = run("serve", "--county", str(county), "--site", str(site), "--database-url", db)
    assert out.returncode == 2 and "not both" in out.stderr


def test_county_users_are_added_and_listed_with_their_town(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/c.db"
    assert run("migrate", "--database-url", db).returncode == 0
    added = run(
        "add-user", "ann", "--role", "operator", "--town", "north", "--password-stdin",
        "--database-url", db, stdin="long-enough-pw\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "town north" in added.stdout
    assert run("add-user", "bo", "--password-stdin", "--database-url", db,
               stdin="long-enough-pw\n").returncode == 0  # fmt: skip
    listed = run("list-users", "--database-url", db).stdout.splitlines()
    assert listed == ["ann\toperator\tnorth\tenabled", "bo\tviewer\t(county-wide)\tenabled"]
    bad = run("add-user", "x", "--town", "no/such", "--password-stdin", "--database-url", db)
    assert bad.returncode == 2
