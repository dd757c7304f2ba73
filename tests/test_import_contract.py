"""The floors contract (pyproject.toml, run by ``make lint``) holds, and catches an upward import.

Each check runs ``lint-imports`` on a copy of the packages and pyproject.toml, so the copy
can be given a forbidden import without touching the tree under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("parkgrid", "edge", "central", "simulators", "site_model", "firmware_protocols")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def copy_of_the_house(into: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    return into


def lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the editable install of the tree under test.
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_floors_contract_holds_and_fails_on_edge_importing_central(tmp_path: Path) -> None:
    house = copy_of_the_house(tmp_path)
    kept = lint_imports(house)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "1 kept, 0 broken" in kept.stdout

    config = house / "edge" / "config.py"
    config.write_text(config.read_text() + "\nimport central  # an upward-sideways import\n")
    broken = lint_imports(house)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "edge is not allowed to import central" in broken.stdout
    assert "edge.config -> central" in broken.stdout
