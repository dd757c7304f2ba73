"""``parkgrid edge run`` refuses at once, naming the file and its key, when a file the
uplink needs (the MQTT password, the CA) cannot be read.

Found following the field guide: a box whose ``mqtt-password`` was not copied into
/etc/parkgrid started, then logged ``uplink crashed`` with a ``FileNotFoundError``
traceback every back-off, for ever, and never said which setting pointed there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from tests.edge.commission_support import parkgrid


def write_config(tmp_path: Path, mqtt: dict[str, str]) -> Path:
    data = {
        "site": "xigang",
        "box_id": "box-p1",
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"url": "mqtt://127.0.0.1:1", "username": "box-p1", **mqtt},
    }
    path = tmp_path / "edge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.mark.parametrize("key", ["password_file", "ca_file"])
async def test_edge_run_refuses_a_missing_mqtt_file_naming_it(tmp_path: Path, key: str) -> None:
    missing = tmp_path / "etc" / "missing"
    mqtt = {key: str(missing)}
    if key == "ca_file":
        mqtt["url"] = "mqtts://127.0.0.1:1"
    path = write_config(tmp_path, mqtt)
    ran = await parkgrid("edge", "run", "--config", str(path), within_s=60)
    assert ran.code == 2, ran.out + ran.err
    assert f"mqtt.{key}" in ran.err and str(missing) in ran.err, ran.err
    assert "No such file or directory" in ran.err, ran.err
    assert "Traceback" not in ran.err, ran.err


async def test_edge_run_with_a_readable_password_file_is_not_refused(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    path = write_config(tmp_path, {"password_file": str(secret)})
    # `check-config` shares the loading; run itself would run for ever, so the refusal check
    # is called the way `edge run` calls it
    from edge.cli import unreadable_mqtt_files
    from edge.config import load_config

    assert unreadable_mqtt_files(load_config(path)) == []
