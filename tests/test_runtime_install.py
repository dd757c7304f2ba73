"""The package installed as a box or an office PC installs it: runtime lock only, no checkout.

A fresh ``python -m venv`` with the pip it ships (not upgraded: Debian 12's is 23.x), then
``pip install --require-hashes -r requirements.lock`` and ``pip install --no-deps`` of a copy
of the source tree (``git ls-files``), which is deleted before anything runs. From an empty
folder, ``parkgrid sim --help`` and a 40-second headless ``parkgrid demo`` must both exit 0:
nothing may come from the dev lock (httpx was), or from files only a checkout has (the demo's
site file was). It needs the package index, as CI has. One test: it takes minutes.

Central on PostgreSQL (a county) installs from ``requirements-central.lock``: the runtime
lock and psycopg, which a box never needs. The runtime lock alone had no PostgreSQL driver,
so a central host installed as the README says could not open a county's database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.broker import free_port

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], *, cwd: Path, log: Path, timeout: float, env: dict[str, str]) -> int:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env=env
        )
    return done.returncode


def tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-25:])


def copy_source(dest: Path) -> None:
    """The files git knows (tracked, or new and not ignored): what a release would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name.decode())


def install(tmp_path: Path, lock: Path, log: Path, env: dict[str, str]) -> Path:
    """A fresh venv with ``lock`` and parkgrid from a copy of the source; its bin folder."""
    venv = tmp_path / "venv"
    # The base interpreter's venv module, with its bundled pip (the test's own .venv has an
    # upgraded one, which would hide what a box's pip does).
    base = Path(getattr(sys, "_base_executable", sys.executable))
    assert run([str(base), "-m", "venv", str(venv)], cwd=tmp_path, log=log, timeout=300,
               env=env) == 0, tail(log)  # fmt: skip
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    assert run([*pip, "install", "-q", "--require-hashes", "-r", str(lock)], cwd=tmp_path,
               log=log, timeout=1200, env=env) == 0, tail(log)  # fmt: skip
    source = tmp_path / "source"
    copy_source(source)
    assert run([*pip, "install", "-q", "--no-deps", str(source)], cwd=tmp_path, log=log,
               timeout=600, env=env) == 0, tail(log)  # fmt: skip
    shutil.rmtree(source)
    return venv / "bin"


@pytest.mark.slow
@pytest.mark.long
def test_runtime_install_runs_the_simulators_and_the_demo_outside_the_checkout(
    tmp_path: Path,
) -> None:
    log = tmp_path / "install.log"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.setdefault("PARKGRID_DEMO_LOCK", str(tmp_path / "demo.lock"))
    bin_dir = install(tmp_path, ROOT / "requirements.lock", log, env)
    venv = bin_dir.parent

    empty = tmp_path / "empty"
    empty.mkdir()
    parkgrid = str(venv / "bin" / "parkgrid")
    assert run([parkgrid, "sim", "--help"], cwd=empty, log=log, timeout=120, env=env) == 0, tail(
        log
    )
    demo = [parkgrid, "demo", "--duration", "40", "--headless", "--port", str(free_port())]
    assert run(demo, cwd=empty, log=log, timeout=600, env=env) == 0, tail(log)
    assert "the town played" in log.read_text(errors="replace"), tail(log)
    # A box's install has no PostgreSQL driver: asked for PostgreSQL, it says which lock
    # has one (it printed ModuleNotFoundError's traceback).
    pg = subprocess.run(
        [parkgrid, "central", "migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/x"],
        cwd=empty, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert pg.returncode == 1, pg
    assert "install requirements-central.lock" in pg.stderr and "Traceback" not in pg.stderr, pg


@pytest.mark.long
def test_central_install_opens_a_county_database_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    from tests.central.helpers import scratch_schema

    log = tmp_path / "install.log"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env = {k: v for k, v in env.items() if not k.startswith("PARKGRID_")}
    parkgrid = str(install(tmp_path, ROOT / "requirements-central.lock", log, env) / "parkgrid")
    empty = tmp_path / "empty"
    empty.mkdir()
    with scratch_schema(pg_url) as url:
        db = ["--database-url", url]
        assert run([parkgrid, "central", "migrate", *db], cwd=empty, log=log, timeout=300,
                   env=env) == 0, tail(log)  # fmt: skip
        add = [parkgrid, "central", "add-user", "ops", "--role", "admin", "--password-stdin", *db]
        with log.open("ab") as out:
            added = subprocess.run(add, cwd=empty, input=b"a-long-password\n", stdout=out,
                                   stderr=subprocess.STDOUT, timeout=120, env=env)  # fmt: skip
        assert added.returncode == 0, tail(log)
        listed = subprocess.run([parkgrid, "central", "list-users", *db], cwd=empty, env=env,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert listed.stdout.splitlines() == ["ops\tadmin\t(county-wide)\tenabled"], listed
