"""``make soak``: the fault, bad-input and security tests run longer and faster, then the table.

The same tests as ``make test`` (tests/faults, tests/badinput, tests/security) with
``PARKGRID_SOAK_FACTOR`` (default 30): each load phase runs that many times longer, at up
to five times the rate, and the power-cut scenario kills the box that many times more. With
the default the whole run takes about 30 minutes on the 2-core machine. The figures go to
test-artifacts/reliability-soak.json (the tests' own reliability.json is left alone); the
tables are printed at the end under a heading naming the command, the date and the factor
(a factor under 30 is said to be a shortened soak), and written to
test-artifacts/reliability-soak-section.md, which ``python -m tests.faults.report --out
docs/reliability.md`` puts into the page. The exit status is non-zero when a test failed
or any row shows a lost or duplicated event.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FULL_FACTOR = 30.0
sys.path.insert(0, str(ROOT))

from tests.faults.report import (  # noqa: E402
    SOAK_SECTION,
    bad_rows,
    known_gaps,
    soak_section,
)
from tests.faults.rig import ARTIFACTS  # noqa: E402

SOAK_JSON = ARTIFACTS / "reliability-soak.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--factor", type=float, default=float(os.environ.get("SOAK_FACTOR", FULL_FACTOR))
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the last soak's figures and re-run only the tests named in pytest_args "
        "(their rows replace the old ones; the section says so)",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args()
    if args.resume and not args.pytest_args:
        parser.error("--resume needs the tests to re-run")
    env = dict(
        os.environ,
        PARKGRID_SOAK_FACTOR=str(args.factor),
        PARKGRID_SOAK_MODE="soak",
        PARKGRID_RELIABILITY_JSON=str(SOAK_JSON),
    )
    if args.resume:
        tests: list[str] = []
    else:
        SOAK_JSON.unlink(missing_ok=True)
        tests = [
            p for p in ("tests/faults", "tests/badinput", "tests/security") if (ROOT / p).is_dir()
        ]
    rc = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, *args.pytest_args],
        cwd=ROOT,
        env=env,
    )
    import json

    data = json.loads(SOAK_JSON.read_text())
    command = "make soak" + (
        f" SOAK_ARGS='--factor {args.factor:g}'" if args.factor != FULL_FACTOR else ""
    )
    note = None
    if args.resume:
        note = (
            f"Resumed: `{' '.join(args.pytest_args)}` was re-run on its own into the figures "
            "of the soak before it; its rows come from the re-run, the others from that soak."
        )
    text = soak_section(data, factor=args.factor, command=command, full=FULL_FACTOR, note=note)
    (ROOT / "test-artifacts" / "reliability-soak.md").write_text(text)
    # docs/reliability.md takes this section when re-rendered (python -m tests.faults.report).
    SOAK_SECTION.write_text(text)
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
