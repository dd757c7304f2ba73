"""``parkgrid central serve --county`` refuses a bad county before serving; users by town."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.central.county_support import town_toml, write_county

ROOT = Path(__file__).resolve().parents[2]


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARKGRID_")}
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        input=stdin,
        env=clean | (env or {}),
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
    assert out.returncode == 2
    # Said plainly, and alone: no empty field name (": :"), no pydantic wording, and no
    # library's set-up lines before it (alembic logged seven at every start).
    assert out.stderr.strip() == (
        "central: give a site file (one town) or a county file (many), not both"
    ), out.stderr


def test_county_users_are_added_and_listed_with_their_town(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/c.db"
    assert run("migrate", "--database-url", db).returncode == 0
    county = write_county(tmp_path)
    added = run(
        "add-user", "ann", "--role", "operator", "--town", "north", "--password-stdin",
        "--database-url", db, stdin="long-enough-pw\n", env={"PARKGRID_COUNTY_FILE": str(county)},
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "town north" in added.stdout
    assert run("add-user", "bo", "--password-stdin", "--database-url", db,
               stdin="long-enough-pw\n").returncode == 0  # fmt: skip
    listed = run("list-users", "--database-url", db).stdout.splitlines()
    assert listed == ["ann\toperator\tnorth\tenabled", "bo\tviewer\t(county-wide)\tenabled"]
    bad = run("add-user", "x", "--town", "no/such", "--password-stdin", "--database-url", db)
    assert bad.returncode == 2


@pytest.mark.parametrize(
    "command",
    [("add-user", "ann", "--password-stdin"), ("add-token", "cam", "--role", "camera")],
    ids=["add-user", "add-token"],
)
def test_a_town_not_in_the_county_is_refused(tmp_path: Path, command: tuple[str, ...]) -> None:
    """A typo in --town made an account that could act nowhere (403 in every town, 404 in
    its own): the town is checked against the county file, or the site file's town."""
    db = f"sqlite:///{tmp_path}/c.db"
    county = write_county(tmp_path)
    site = tmp_path / "towns" / "north.toml"
    pw = "long-enough-pw\n"
    typo = run(*command, "--town", "nrth", "--county", str(county), "--database-url", db, stdin=pw)
    assert typo.returncode == 2
    assert f"no town 'nrth' in {county} (its towns: north, south)" in typo.stderr, typo.stderr
    by_env = {"PARKGRID_COUNTY_FILE": str(county)}
    typo = run(*command, "--town", "nrth", "--database-url", db, stdin=pw, env=by_env)
    assert typo.returncode == 2 and "no town 'nrth'" in typo.stderr, typo.stderr
    other = run(*command, "--town", "south", "--site", str(site), "--database-url", db, stdin=pw)
    assert other.returncode == 2
    assert f"no town 'south': {site} is town 'north'" in other.stderr, other.stderr
    unchecked = run(*command, "--town", "north", "--database-url", db, stdin=pw)
    assert unchecked.returncode == 2
    assert "--town is checked against the county file" in unchecked.stderr, unchecked.stderr
    listed = run("list-users", "--database-url", db).stdout
    assert "nrth" not in listed and "south" not in listed
    good = run(*command, "--town", "north", "--database-url", db, stdin=pw, env=by_env)
    assert good.returncode == 0, good.stderr


def test_check_site_checks_a_county_file(tmp_path: Path) -> None:
    """check-site takes a county file too: every town's file and the ids across towns."""
    county = write_county(tmp_path)
    ok = run("check-site", str(county))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        f"{county}: county vale: 2 towns",
        "  north: 1 boxes, 1 lots, 1 zones, 6 bays, 1 grids",
        "  south: 1 boxes, 1 lots, 1 zones, 6 bays, 1 grids",
    ], ok.stdout
    clash = town_toml("south").replace("SP1-1", "NP1-1")
    bad = write_county(tmp_path / "bad", towns={"north": town_toml("north"), "south": clash})
    refused = run("check-site", str(bad))
    assert refused.returncode == 2
    assert "bays id 'NP1-1' is defined by both town 'north' and town 'south'" in refused.stderr


def test_the_example_county_checks_and_loads() -> None:
    """The county the docs point a technician to (Xigang and an invented second town)."""
    county_file = ROOT / "simulators" / "sites" / "vale" / "county.toml"
    checked = run("check-site", str(county_file))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines()[0] == f"{county_file}: county vale: 2 towns"
    from site_model.county import load_county

    county = load_county(county_file)
    assert sorted(county.towns) == ["dongcun", "xigang"]
    assert county.town_of_box("dc-box-p1") == "dongcun"


def test_fleet_on_a_county_host_works_on_the_town_it_is_given(tmp_path: Path) -> None:
    """On a county's central host the environment names the county file. `fleet status
    --site town.toml` failed there ("give a site file or a county file, not both"), and
    without --site it did not say what to give."""
    db = f"sqlite:///{tmp_path}/c.db"
    county = write_county(tmp_path)
    on_host = {"PARKGRID_COUNTY_FILE": str(county)}
    north = tmp_path / "towns" / "north.toml"
    status = run("fleet", "status", "--site", str(north), "--database-url", db, env=on_host)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].startswith("n-box1 ")
    bare = run("fleet", "status", "--database-url", db, env=on_host)
    assert bare.returncode == 2
    assert f"give --site FILE, one of the towns' site files {county} names" in bare.stderr
