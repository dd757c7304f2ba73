"""The ``parkgrid`` command's dispatch."""

import subprocess
import sys


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


def test_cli_version() -> None:
    """--version prints the package version."""
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "0.1.0"
