"""The ``parkgrid`` command's dispatch."""

import subprocess
import sys
import tomllib
from pathlib import Path

from edge.pipeline.status import SOFTWARE_VERSION

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_without_group_prints_usage_and_exits_2() -> None:
    """Calling parkgrid bare shows the groups and exits 2, not 0."""
    result = run()
    assert result.returncode == 2
    for group in ("edge", "central", "sim", "demo"):
        assert group in result.stderr + result.stdout


def test_cli_version_is_pyprojects_and_written_nowhere_else() -> None:
    """--version and the box's software_version are pyproject.toml's version, read from the
    installed package's metadata; no module carries a copy of it."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == version
    assert f"parkgrid-edge {version}" == SOFTWARE_VERSION
    copies = [
        str(path.relative_to(ROOT))
        for package in ("parkgrid", "edge", "central", "simulators", "firmware_protocols")
        for path in (ROOT / package).rglob("*.py")
        if f'"{version}"' in path.read_text(encoding="utf-8")
    ]
    assert copies == []
