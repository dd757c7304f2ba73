"""provision-box: Mosquitto password lines and ACL blocks a real broker accepts and enforces."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.provision import (
    box_acl,
    mosquitto_hash,
    password_line,
    provision_box,
    upsert_acl,
    upsert_password,
    verify_mosquitto_hash,
)
from edge.config import load_config
from simulators.broker import MosquittoBroker
from site_model.site import load_site

SITE_FILE = Path(__file__).parent / "site_small.toml"
# Started as root, mosquitto drops to its own user, which cannot enter pytest's 0700 tmp dirs.
AS_ROOT = ["user root"] if os.geteuid() == 0 else []


def parkgrid(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", *args], capture_output=True, text=True, timeout=60
    )


class Peer:
    """A paho client on its own network thread, collecting what it receives."""

    def __init__(self, broker: MosquittoBroker, user: str, password: str) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connack: queue.Queue[object] = queue.Queue()
        self._subacks: queue.Queue[object] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}")
        self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self._connack.put(rc)
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: self._subacks.put(rcs)
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.reason = self._connack.get(timeout=10)

    def subscribe(self, *filters: str) -> None:
        for f in filters:
            self.client.subscribe(f, qos=1)
            self._subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def until(self, payload: bytes) -> list[str]:
        """Topics received up to and including the one carrying ``payload``."""
        topics = []
        while True:
            topic, got = self.received.get(timeout=10)
            topics.append(topic)
            if got == payload:
                return topics

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def provisioned(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, dict[str, str]]]:
    """Boxes box-p1 and box-p2 provisioned by the CLI into the broker's files, plus central."""
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    secrets: dict[str, str] = {}
    for box in ("box-p1", "box-p2"):
        out = tmp_path / box
        ran = parkgrid(
            "central", "provision-box", box, "--site", str(SITE_FILE), "--out", str(out),
            "--password-file", str(passwd), "--acl-file", str(acl),
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        secrets[box] = (out / "mqtt-password").read_text().strip()
        assert (out / "mqtt-password").stat().st_mode & 0o777 == 0o600
    secrets["central"] = "central-secret"
    upsert_password(passwd, line=password_line("central", secrets["central"]))
    broker = MosquittoBroker(
        workdir=tmp_path / "broker",
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT],
    )
    with broker:
        yield broker, secrets


def test_provision_hash_verifies_against_mosquitto_passwd(tmp_path: Path) -> None:
    """A line written by Debian's mosquitto_passwd verifies with our code, and ours has its form."""
    target = tmp_path / "pw"
    target.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(target), "box-x", "s3cret"], check=True)
    theirs = target.read_text().strip().split(":", 1)[1]
    assert verify_mosquitto_hash("s3cret", theirs)
    assert not verify_mosquitto_hash("wrong", theirs)
    ours = mosquitto_hash("s3cret")
    assert ours.startswith("$7$101$") and theirs.startswith("$7$101$")
    assert len(ours.split("$")[3]) == len(theirs.split("$")[3])  # 12-byte salt, base64
    assert verify_mosquitto_hash("s3cret", ours)


def test_provision_broker_accepts_the_box_and_refuses_a_wrong_password(
    provisioned: tuple[MosquittoBroker, dict[str, str]],
) -> None:
    """The password line provision-box wrote lets the box in; a wrong password is refused."""
    broker, secrets = provisioned
    box = Peer(broker, "box-p1", secrets["box-p1"])
    try:
        assert not box.reason.is_failure  # type: ignore[attr-defined]
    finally:
        box.close()
    intruder = Peer(broker, "box-p1", "not-the-password")
    try:
        assert intruder.reason.is_failure  # type: ignore[attr-defined]
    finally:
        intruder.close()


def test_provision_acl_box_publishes_only_under_its_own_id(
    provisioned: tuple[MosquittoBroker, dict[str, str]],
) -> None:
    """Central sees box-p1's own topics, never what box-p1 writes into box-p2's subtree."""
    broker, secrets = provisioned
    central = Peer(broker, "central", secrets["central"])
    box = Peer(broker, "box-p1", secrets["box-p1"])
    try:
        central.subscribe("parkgrid/#")
        root = "parkgrid/v1/testtown"
        box.publish(f"{root}/box-p1/status", b"own status")
        box.publish(f"{root}/box-p2/status", b"forged status")
        box.publish(f"{root}/box-p1/cmd/rebirth", b"self-command")
        box.publish(f"{root}/box-p1/ack", b"self-ack")
        box.publish(f"{root}/box-p1/event", b"sentinel")
        topics = central.until(b"sentinel")
        assert topics == [f"{root}/box-p1/status", f"{root}/box-p1/event"]
    finally:
        box.close()
        central.close()


def test_provision_acl_box_reads_its_commands_and_every_lot(
    provisioned: tuple[MosquittoBroker, dict[str, str]],
) -> None:
    """box-p1 reads its own cmd/ and ack, every lot's state and every box's status (what
    its uplink subscribes to), but not box-p2's commands."""
    broker, secrets = provisioned
    central = Peer(broker, "central", secrets["central"])
    box = Peer(broker, "box-p1", secrets["box-p1"])
    try:
        root = "parkgrid/v1/testtown"
        box.subscribe(
            f"{root}/box-p1/cmd/+", f"{root}/box-p1/ack", f"{root}/+/lot/+",
            f"{root}/_central/status", f"{root}/box-p2/cmd/+", f"{root}/box-p2/ack",
            f"{root}/+/status",
        )  # fmt: skip
        central.publish(f"{root}/box-p2/cmd/rebirth", b"not for p1")
        central.publish(f"{root}/box-p2/ack", b"not for p1 either")
        central.publish(f"{root}/box-p1/cmd/rebirth", b"for p1")
        central.publish(f"{root}/box-p1/ack", b"ack p1")
        central.publish(f"{root}/box-p2/lot/P2", b"lot P2")
        central.publish(f"{root}/box-p2/status", b"box-p2 offline")
        central.publish(f"{root}/_central/status", b"central online")
        topics = box.until(b"central online")
        # (_central/status matches two of its filters: Mosquitto may deliver it twice.)
        assert list(dict.fromkeys(topics)) == [
            f"{root}/box-p1/cmd/rebirth",
            f"{root}/box-p1/ack",
            f"{root}/box-p2/lot/P2",
            f"{root}/box-p2/status",
            f"{root}/_central/status",
        ]
    finally:
        box.close()
        central.close()


def test_provision_starter_config_loads_and_takes_the_bays(tmp_path: Path) -> None:
    """The starter edge.toml is valid as written, and stays valid with import-bays appended."""
    done = provision_box(load_site(SITE_FILE), "box-p1", mqtt_url="mqtts://broker.town:8883")
    config_path = tmp_path / "edge.toml"
    config_path.write_text(done.edge_toml)
    config = load_config(config_path)
    assert (config.box_id, config.site, config.mqtt.username) == ("box-p1", "testtown", "box-p1")
    assert config.mqtt.tls and list(config.lots) == ["P1"]
    rows = done.bays_csv.splitlines()
    assert rows[0] == "lot,bay,sensor,format" and len(rows) == 1 + 10
    filled = [rows[0]] + [
        row.replace(",,", f",{0xA10000 + i:08X},nwave-nps") for i, row in enumerate(rows[1:])
    ]
    (tmp_path / "bays.csv").write_text("\n".join(filled) + "\n")
    ran = parkgrid("edge", "import-bays", str(tmp_path / "bays.csv"), "--lot", "P1")
    assert ran.returncode == 0, ran.stderr
    config_path.write_text(done.edge_toml + "\n" + ran.stdout)
    assert load_config(config_path).lots["P1"].capacity == 10


def test_provision_rerun_replaces_the_box_entries(tmp_path: Path) -> None:
    """Provisioning a box again rotates its line and block instead of adding duplicates."""
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    for _ in range(2):
        upsert_password(passwd, line=password_line("box-p1", "x"))
        upsert_acl(acl, box_block=box_acl("testtown", "box-p1"), box_id="box-p1",
                   central_user="central")  # fmt: skip
    upsert_acl(acl, box_block=box_acl("testtown", "box-p2"), box_id="box-p2",
               central_user="central")  # fmt: skip
    assert [ln.split(":")[0] for ln in passwd.read_text().splitlines()] == ["box-p1"]
    text = acl.read_text()
    assert text.index("user central") < text.index("user box-p1") < text.index("user box-p2")
    assert text.count("user box-p1") == 1


def test_provision_unknown_box_exits_2() -> None:
    """A box the site file does not declare is bad input, with the known boxes named."""
    ran = parkgrid("central", "provision-box", "box-zz", "--site", str(SITE_FILE))
    assert ran.returncode == 2
    assert "box-p1" in ran.stderr


def test_provision_without_mqtt_url_says_the_starter_needs_the_brokers_name(
    tmp_path: Path,
) -> None:
    """Forgetting --mqtt-url still writes the files, and says which url to change."""
    ran = parkgrid(
        "central", "provision-box", "box-p1", "--site", str(SITE_FILE), "--out", str(tmp_path)
    )
    assert ran.returncode == 0, ran.stderr
    assert "no --mqtt-url" in ran.stderr and "mqtts://broker:8883" in ran.stderr
    assert load_config(tmp_path / "edge.toml").mqtt.url == "mqtts://broker:8883"


def test_provision_starter_sign_example_uncommented_is_a_valid_sign(tmp_path: Path) -> None:
    """The starter's commented sign example, uncommented as it stands (the way a technician
    fills it in), is valid TOML and a valid guidance sign. It was an inline table split over
    two lines, which TOML does not allow: ``Invalid initial character for a key part``."""
    done = provision_box(load_site(SITE_FILE), "box-p1", mqtt_url="mqtts://broker.town:8883")
    lines = done.edge_toml.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [sign_buses."))
    toml_line = re.compile(r"# (\[|[\w.\-]+ = |\s+\S)")  # a table, a key or its continuation
    uncommented = [line[2:] if toml_line.match(line) else line for line in lines[start:]]
    config_path = tmp_path / "edge.toml"
    config_path.write_text("\n".join(lines[:start] + uncommented) + "\n")
    config = load_config(config_path)
    (bus,) = config.sign_buses.values()
    (sign,) = bus.signs.values()
    assert (sign.unit, sign.profile, sign.lot, sign.arrow) == (1, "parkgrid-guidance", "P1", "left")
    # Its fallback example is another lot of this site: "P2" here.
    assert [f.lot for f in sign.fallback] == ["P2"]


def test_provision_starter_sign_example_names_the_towns_own_lots(tmp_path: Path) -> None:
    """A county town's box was shown ``fallback = [{ lot = "P2" ... }]``, a lot its town
    does not have (its lots are ``NP1``...): the example names lots of the box's own site."""
    from tests.central.county_support import town_toml

    (tmp_path / "north.toml").write_text(town_toml("north"))
    done = provision_box(load_site(tmp_path / "north.toml"), "n-box1", mqtt_url="mqtts://b:8883")
    text = done.edge_toml
    assert '# lot = "NP1"' in text
    assert 'lot = "P2"' not in text
    # A town of one lot has no other lot to send drivers to: the example says so.
    assert "# fallback = []" in text


@pytest.mark.parametrize("option", ["--password-file", "--acl-file", "--out"])
def test_provision_a_wrong_broker_file_path_is_named_and_nothing_is_written(
    tmp_path: Path, option: str
) -> None:
    """A typo in the broker's file path (``/etc/mosqitto/passwd``) ended in a traceback after
    the box's files were written with a new password the broker never got."""
    wrong = tmp_path / "etc" / "mosqitto" / "passwd"
    paths = {
        "--out": str(tmp_path / "box-files"),
        "--password-file": str(tmp_path / "passwd"),
        "--acl-file": str(tmp_path / "acl"),
    }
    if option == "--out":
        (tmp_path / "etc").write_text("a file where a folder should be\n")
        wrong = tmp_path / "etc" / "box-files"
    paths[option] = str(wrong)
    args = [x for pair in paths.items() for x in pair]
    ran = parkgrid("central", "provision-box", "box-p1", "--site", str(SITE_FILE),
                   "--mqtt-url", "mqtts://broker.town:8883", *args)  # fmt: skip
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    assert str(wrong) in ran.stderr and option in ran.stderr, ran.stderr
    assert "nothing written" in ran.stderr, ran.stderr
    assert not (tmp_path / "box-files").exists()
    assert not (tmp_path / "passwd").exists() and not (tmp_path / "acl").exists()
