"""``make soak``: the fault, bad-input and security tests run longer and faster, then the table.

The same tests as ``make test`` (tests/faults, tests/badinput, tests/security) with
``PARKGRID_SOAK_FACTOR`` (default 30): each load phase runs that many times longer, at up
to five times the rate, and the power-cut scenario kills the box that many times more. With
the default the whole run takes about 30 minutes on the 2-core machine. The table is
printed at the end (and written to test-artifacts/reliability-soak.md); the exit status is
non-zero when a test failed or any row shows a lost or duplicated event.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.report import bad_rows, known_gaps, render  # noqa: E402
from tests.faults.rig import RELIABILITY_JSON  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factor", type=float, default=float(os.environ.get("SOAK_FACTOR", 30)))
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args()
    env = dict(os.environ, PARKGRID_SOAK_FACTOR=str(args.factor), PARKGRID_SOAK_MODE="soak")
    if RELIABILITY_JSON.exists():
        RELIABILITY_JSON.unlink()
    tests = [p for p in ("tests/faults", "tests/badinput", "tests/security") if (ROOT / p).is_dir()]
    rc = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *args.pytest_args],
        cwd=ROOT,
        env=env,
    )
    import json

    data = json.loads(RELIABILITY_JSON.read_text())
    text = render(data)
    (ROOT / "test-artifacts" / "reliability-soak.md").write_text(text)
    print(text)
    for gap in known_gaps(data):
        print(f"soak: known gap: {gap}", file=sys.stderr)
    bad = bad_rows(data)
    if bad:
        print(f"soak: NOT CLEAN: {', '.join(sorted(bad))}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
