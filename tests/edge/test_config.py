"""The box configuration: valid files load, every broken one names its problems by path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.bays_csv import bays_to_csv, bays_to_toml, read_bays_csv
from edge.config import ConfigError, load_config, normalise_sensor_id

GOOD = """
site = "xigang"
box_id = "box-p1"
timezone = "Asia/Shanghai"
data_dir = "{data}"

[mqtt]
url = "mqtt://127.0.0.1:1883"
username = "box-p1"
password_env = "PARKGRID_MQTT_PASSWORD"

[serial.conc1]
device = "/dev/serial/by-id/usb-FTDI_conc1"
protocol = "concentrator"

[serial.rx1]
device = "/dev/serial/by-id/usb-FTDI_rx1"
protocol = "m77-ascii"
baud = 9600
receiver_hosts = [1]

[lots.P1]
name = "Market lot"

[lots.P1.bays]
B001 = { sensor = "00A1B2C3", format = "nwave-nps" }
B002 = { sensor = "0x00a1b2c4", format = "bosch-pls" }
B003 = { sensor = "M77-1-7", format = "m77-ascii" }

[lots.P2.bays]
C001 = { sensor = "00000010", format = "dingtek-do20x" }

[sign_buses.bus1]
transport = "tcp"
host = "127.0.0.1"
port = 5020

[sign_buses.bus1.signs.S1]
unit = 1
profile = "parkgrid-guidance"
lot = "P1"
arrow = "left"
fallback = [{ lot = "P3", arrow = "right" }]

[sign_buses.bus1.signs.W1]
unit = 2
profile = "parkgrid-warning"
message = "truck_ban"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(textwrap.dedent(text).replace("{data}", str(tmp_path / "data")))
    return path


def problems_of(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return {p.path: p.message for p in info.value.problems}


def test_config_good_file_loads(tmp_path: Path) -> None:
    """A complete, consistent file loads with ids normalised and capacities derived."""
    config = load_config(write(tmp_path, GOOD))
    assert config.box_id == "box-p1"
    assert config.lots["P1"].capacity == 3
    assert config.lots["P1"].bays["B002"].sensor == "00A1B2C4"
    assert config.lots["P1"].bays["B003"].sensor == "M77-001-007"
    assert config.mqtt.port == 1883 and not config.mqtt.tls
    assert config.sign_buses["bus1"].signs["S1"].fallback[0].lot == "P3"


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        pytest.param(
            'B001 = { sensor = "00A1B2C3", format = "nwave-nps" }',
            'B001 = { sensor = "00A1B2C3", format = "nwave-xyz" }',
            "lots.P1.bays.B001.format",
            "unknown sensor format",
            id="unknown-format",
        ),
        pytest.param(
            'B001 = { sensor = "00A1B2C3", format = "nwave-nps" }',
            'B001 = { sensor = "ZZ", format = "nwave-nps" }',
            "lots.P1.bays.B001.sensor",
            "not a sensor id",
            id="bad-sensor-id",
        ),
        pytest.param(
            'C001 = { sensor = "00000010", format = "dingtek-do20x" }',
            'C001 = { sensor = "00A1B2C3", format = "dingtek-do20x" }',
            "lots.P2.bays.C001.sensor",
            "already mapped to lots.P1.bays.B001",
            id="sensor-twice",
        ),
        pytest.param(
            'lot = "P1"\narrow = "left"',
            'lot = "P9"\narrow = "left"',
            "sign_buses.bus1.signs.S1.lot",
            "no lot 'P9'",
            id="sign-unknown-lot",
        ),
        pytest.param(
            'timezone = "Asia/Shanghai"',
            'timezone = "Mars/Olympus"',
            "timezone",
            "unknown time zone",
            id="bad-timezone",
        ),
        pytest.param(
            'url = "mqtt://127.0.0.1:1883"',
            'url = "http://127.0.0.1"',
            "mqtt.url",
            "not an MQTT URL",
            id="bad-mqtt-url",
        ),
        pytest.param(
            "receiver_hosts = [1]",
            "receiver_hosts = [2]",
            "lots.P1.bays.B003.sensor",
            "receiver host 1 is not polled",
            id="m77-host-not-polled",
        ),
        pytest.param(
            'profile = "parkgrid-warning"',
            'profile = "parkgrid-warnign"',
            "sign_buses.bus1.signs.W1.profile",
            "unknown sign profile",
            id="misspelt-profile",
        ),
        pytest.param(
            'name = "Market lot"',
            'nmae = "Market lot"',
            "lots.P1.nmae",
            "unknown setting",
            id="misspelt-key",
        ),
        pytest.param(
            "unit = 2",
            "unit = 1",
            "sign_buses.bus1",
            "used by more than one sign",
            id="duplicate-unit",
        ),
    ],
)
def test_config_problem_named_by_path(
    tmp_path: Path, old: str, new: str, path: str, words: str
) -> None:
    """Each broken field yields one problem at its dotted path with a plain sentence."""
    assert old in GOOD
    problems = problems_of(write(tmp_path, GOOD.replace(old, new, 1)))
    assert path in problems, problems
    assert words in problems[path]


def test_config_several_problems_all_listed(tmp_path: Path) -> None:
    """Two unrelated mistakes are both reported, not just the first."""
    text = GOOD.replace('format = "nwave-nps"', 'format = "nope"').replace(
        'timezone = "Asia/Shanghai"', 'timezone = "Nowhere/At_All"'
    )
    problems = problems_of(write(tmp_path, text))
    assert {"lots.P1.bays.B001.format", "timezone"} <= set(problems)


def test_config_not_toml(tmp_path: Path) -> None:
    """A file that is not TOML says so with the line, instead of a traceback."""
    problems = problems_of(write(tmp_path, "site = \n"))
    assert any("not valid TOML" in m and "line 1" in m for m in problems.values())


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    """check-config exits 0 on a good file and 2 with every problem on a broken one."""
    good = write(tmp_path, GOOD)
    cmd = [sys.executable, "-m", "parkgrid", "edge", "check-config"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "4 bay(s)" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        good.read_text()
        .replace('format = "nwave-nps"', 'format = "x"')
        .replace("unit = 2", "unit = 1")
    )
    result = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "lots.P1.bays.B001.format" in result.stderr
    assert "sign_buses.bus1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0x00a1b2c3", "00A1B2C3"),
        (" 00a1b2c3 ", "00A1B2C3"),
        ("m77-2-15", "M77-002-015"),
    ],
)
def test_normalise_sensor_id(raw: object, expected: str) -> None:
    """Sensor ids in any common spelling become one canonical form."""
    assert normalise_sensor_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("a1", "has 2 hex digits"),
        ("0A1B2C3", "has 7 hex digits"),
        ("0xa1b2c4", "has 6 hex digits"),
        (161, "in quotes"),
        ("00A1B2C3D", "not a sensor id"),
    ],
)
def test_a_sensor_id_short_of_8_hex_digits_is_refused(raw: object, said: str) -> None:
    """Issue 13 finding 5: 1-7 hex digits were silently zero-padded; the sensor says 8.

    A dropped digit must not become another sensor's id. An unquoted number in TOML is
    refused too: ``sensor = 10001234`` would be read as decimal.
    """
    with pytest.raises(ValueError, match=said):
        normalise_sensor_id(raw)


def test_a_short_sensor_id_in_bays_csv_is_named_by_line(tmp_path: Path) -> None:
    """The refusal reaches the technician with the file, line and column."""
    csv_path = tmp_path / "bays.csv"
    csv_path.write_text(
        "lot,bay,sensor,format\nP1,B001,00A1B2C3,nwave-nps\nP1,B002,A1B2C4,nwave-nps\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_bays_csv(csv_path)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1
    assert f"{csv_path}:3: sensor" in problems[0]
    assert "'A1B2C4' has 6 hex digits" in problems[0]


def test_bays_csv_round_trip(tmp_path: Path) -> None:
    """CSV -> TOML -> config -> CSV keeps every bay, and bad rows are named by line."""
    csv_path = tmp_path / "bays.csv"
    csv_path.write_text(
        "lot,bay,sensor,format,label\n"
        "P1,B001,00A1B2C3,nwave-nps,by the gate\n"
        "P1,B002,00a1b2c4,bosch-pls,\n"
    )
    lots = read_bays_csv(csv_path)
    toml_text = bays_to_toml(lots)
    config_path = tmp_path / "edge.toml"
    config_path.write_text(
        'site = "x"\nbox_id = "b"\n[serial.c]\ndevice = "/dev/x"\nprotocol = "concentrator"\n'
        + toml_text
    )
    config = load_config(config_path)
    assert config.lots["P1"].bays["B001"].label == "by the gate"
    out = bays_to_csv(config)
    assert "P1,B002,00A1B2C4,bosch-pls,," in out

    csv_path.write_text("lot,bay,sensor,format\nP1,B001,zz,nwave-nps\nP1,B002,00A1B2C3,nope\n")
    with pytest.raises(ConfigError) as info:
        read_bays_csv(csv_path)
    paths = [p.path for p in info.value.problems]
    assert any(p.endswith(":2: sensor") for p in paths), paths
    assert any(p.endswith(":3: format") for p in paths), paths


def test_config_documented_example_is_valid() -> None:
    """The example in docs/examples/ (shown in docs/edge.md) stays a valid config."""
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "edge-p1.toml"
    config = load_config(example)
    assert config.lots["P1"].capacity == 5
    assert config.mqtt.tls
