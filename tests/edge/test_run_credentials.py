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


async def test_edge_run_warns_when_the_broker_user_is_not_the_box(tmp_path: Path) -> None:
    """box_id changed by hand: the town's ACL (provision-box) lets user box-p1 publish only
    under box-p1, so box-p2's every message would be dropped without a word. The box still
    runs (its outbox keeps every event), but says so at start, in the journal."""
    import asyncio
    import sys

    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret\n")
    path = write_config(tmp_path, {"password_file": str(secret)})
    path.write_text(path.read_text().replace('box_id = "box-p1"', 'box_id = "box-p2"'))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "edge", "run", "--config", str(path),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    said = []
    try:
        async with asyncio.timeout(60):
            while line := (await proc.stderr.readline()).decode():
                said.append(line)
                if "box-p2" in line and "box-p1" in line:
                    break
    finally:
        proc.terminate()
        await proc.wait()
    warning = said[-1] if said else ""
    assert "box-p2" in warning and "box-p1" in warning, "".join(said)
    assert "WARNING" in warning and "parkgrid/v1/xigang/box-p2/" in warning, warning
