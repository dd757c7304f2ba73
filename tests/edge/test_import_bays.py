"""import-bays --config: a lot's bays replaced in place, so "fix and re-import" works.

Issue 13 finding 5: the field guide's ``import-bays ... >> edge.toml`` gave ``Cannot declare
('lots', 'P3', 'bays') twice`` on the second import, and a redirect cannot write the
box's root-owned 0640 config. The import now edits the file: comments, other settings and
the file's mode stay, and a bad CSV or a config made invalid leaves the file untouched.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_config

STARTER = """\
# Starter config for box box-p3, made by provision-box
site = "xigang"
box_id = "box-p3"
data_dir = "/var/lib/parkgrid"

[mqtt]
url = "mqtt://127.0.0.1:1883"  # the town's broker

[serial.conc]
# the concentrator's adapter
device = "/dev/serial/by-id/usb-FTDI-if00"
protocol = "concentrator"

[lots.P3]
name = "Market Street"
# bays.csv, then import-bays

[lots.P4]
name = "Station"

[lots.P4.bays]
D001 = { sensor = "00D00001", format = "bosch-pls" }
"""

CSV_FIRST = """\
lot,bay,sensor,format
P3,C001,00C00001,nwave-nps
P3,C002,00C00002,dingtek-do20x
P3,C003,00C00003,bosch-pls
"""

# The walk found C001 and C002 swapped: the technician corrects the two rows.
CSV_FIXED = """\
lot,bay,sensor,format
P3,C001,00C00002,dingtek-do20x
P3,C002,00C00001,nwave-nps
P3,C003,00C00003,bosch-pls
"""


def parkgrid(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", *args], capture_output=True, text=True, timeout=120
    )


def test_import_twice_replaces_the_lot_in_place_keeping_comments_and_mode(tmp_path: Path) -> None:
    """Import, fix two rows, import again: the config loads with the fixed rows only."""
    config = tmp_path / "edge.toml"
    config.write_text(STARTER)
    config.chmod(0o640)
    csv = tmp_path / "bays.csv"
    csv.write_text(CSV_FIRST)
    first = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert load_config(config).lots["P3"].bays["C001"].sensor == "00C00001"

    csv.write_text(CSV_FIXED)
    again = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "lot P3: 3 bay(s) (was 3): 0 added, 0 removed, 2 with a new sensor" in again.stderr
    loaded = load_config(config)
    assert {b: bay.sensor for b, bay in loaded.lots["P3"].bays.items()} == {
        "C001": "00C00002",
        "C002": "00C00001",
        "C003": "00C00003",
    }
    assert loaded.lots["P4"].bays["D001"].sensor == "00D00001"  # another lot untouched
    text = config.read_text()
    for kept in ("# Starter config for box box-p3", "# the town's broker", "# the concentrator's"):
        assert kept in text
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edge.toml")]


def test_import_repairs_a_config_broken_by_an_earlier_append(tmp_path: Path) -> None:
    """``>>`` twice left two [lots.P3.bays]; the in-place import leaves one, loadable."""
    config = tmp_path / "edge.toml"
    csv = tmp_path / "bays.csv"
    csv.write_text(CSV_FIRST)
    fragment = parkgrid("edge", "import-bays", str(csv), "--lot", "P3")
    assert fragment.returncode == 0, fragment.stderr
    config.write_text(STARTER + "\n" + fragment.stdout + "\n" + fragment.stdout)
    broken = parkgrid("edge", "check-config", str(config))
    assert broken.returncode == 2 and "twice" in broken.stderr

    csv.write_text(CSV_FIXED)
    ran = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert ran.returncode == 0, ran.stderr
    assert load_config(config).lots["P3"].bays["C001"].sensor == "00C00002"
    assert config.read_text().count("[lots.P3.bays]") == 1


def test_a_bad_row_or_a_clash_leaves_the_config_untouched(tmp_path: Path) -> None:
    """A sensor already mapped in another lot is refused by the box's rules; nothing written."""
    config = tmp_path / "edge.toml"
    config.write_text(STARTER)
    before = config.read_bytes()
    csv = tmp_path / "bays.csv"
    csv.write_text(CSV_FIRST.replace("00C00003", "00D00001"))  # P4's D001 sensor
    ran = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert ran.returncode == 2
    assert "00D00001 is already mapped" in ran.stderr
    assert "nothing written" in ran.stderr
    csv.write_text(CSV_FIRST.replace("00C00003", "C3"))
    ran = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert ran.returncode == 2 and "bays.csv:4: sensor" in ran.stderr
    assert config.read_bytes() == before


def test_import_keeps_the_files_group(tmp_path: Path) -> None:
    """On a box the file is root:parkgrid 0640 and imported as root: the group stays."""
    others = [g for g in os.getgroups() if g != os.getegid()]
    group = 1 if os.geteuid() == 0 else (others[0] if others else None)
    if group is None:
        pytest.skip("needs root, or a second group to give the file")
    config = tmp_path / "edge.toml"
    config.write_text(STARTER)
    os.chown(config, -1, group)
    config.chmod(0o640)
    csv = tmp_path / "bays.csv"
    csv.write_text(CSV_FIRST)
    ran = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert ran.returncode == 0, ran.stderr
    info = os.stat(config)
    assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (group, 0o640)


def test_a_wrong_lot_id_is_refused_naming_the_configs_lots(tmp_path: Path) -> None:
    """A typo in ``--lot`` (or the neighbouring box's lot, whose rows are in the same town
    CSV) must not add a lot this box does not have: the guide's bench run added ``lots.P9``
    and printed 24 lines of clashes instead of saying the lot is wrong."""
    config = tmp_path / "edge.toml"
    config.write_text(STARTER)
    before = config.read_bytes()
    csv = tmp_path / "bays.csv"
    csv.write_text(CSV_FIRST.replace("P3,", "P9,"))  # its own bays, no clash to hide behind
    ran = parkgrid("edge", "import-bays", str(csv), "--lot", "P9", "--config", str(config))
    assert ran.returncode == 2, ran.stderr
    assert "lot P9 is not a lot of this box" in ran.stderr, ran.stderr
    assert "P3, P4" in ran.stderr and str(config) in ran.stderr, ran.stderr
    assert config.read_bytes() == before
    # the CSV's lot column names no P3 row: the lots it does have are named
    ran = parkgrid("edge", "import-bays", str(csv), "--lot", "P3", "--config", str(config))
    assert ran.returncode == 2
    assert "no row of lot P3" in ran.stderr and "its lots: P9" in ran.stderr, ran.stderr
    assert config.read_bytes() == before
