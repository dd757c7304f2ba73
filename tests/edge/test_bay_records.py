"""The commissioning record is readable by the box's other users, like the outbox beside it.

Found following the field guide: learn-bays run with ``sudo`` (as root) wrote
``commission/bays.json`` 0600 (``mkstemp``'s mode), so doctor run as ``parkgrid`` read it
as empty and waited for every sensor, and ``edge inspect`` said ``0 of 12 bay(s) proven``
right after all 12 were.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.commission import bay_records


def test_saved_record_has_the_umasks_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    path = tmp_path / "commission" / "bays.json"
    record = bay_records.BayRecord(
        bay="P1/B001", sensor="00A10001", outcome="PASS", at=1.0, by="learn-bays"
    )
    old = os.umask(0o022)
    try:
        bay_records.save(path, [record])
        bay_records.save(path, [record])  # replaced again: the mode holds
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert bay_records.load(path)["P1/B001"] == record
