"""doctor against simulators, a Mosquitto with TLS, passwords and ACLs, and test certificates."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from central.provision import provision_box, upsert_acl, upsert_password
from edge.clock import read_clock
from edge.commission.doctor import CheckResult, Status, diagnose
from simulators.broker import MosquittoBroker, free_port
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import SignSimulator
from site_model.site import load_site
from tests.edge.commission_support import parkgrid

SITE_FILE = Path(__file__).parent.parent / "central" / "site_small.toml"
SENSORS = {"B001": "00A10001", "B002": "00A10002", "B003": "00A10003"}
AS_ROOT = ["user root"] if os.geteuid() == 0 else []


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def server_cert(pki: Path, name: str, days: int) -> None:
    """An EC key and a certificate for 127.0.0.1 signed by the test CA, valid ``days``."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=127.0.0.1",
            cwd=pki)  # fmt: skip
    (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", str(days),
            "-extfile", "san.ext", cwd=pki)  # fmt: skip


@dataclass
class Town:
    broker: MosquittoBroker
    pki: Path
    good_port: int  # TLS listener, certificate valid a year
    short_port: int  # TLS listener, certificate expiring in 10 days
    password_file: Path


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    """A test CA, two TLS listeners, and box-p1 provisioned into the broker's files."""
    root = tmp_path_factory.mktemp("doctor")
    pki = root / "pki"
    pki.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "365",
            "-subj", "/CN=parkgrid test CA", cwd=pki)  # fmt: skip
    server_cert(pki, "good", 365)
    server_cert(pki, "short", 10)
    done = provision_box(load_site(SITE_FILE), "box-p1", mqtt_url="mqtts://127.0.0.1:8883")
    passwd, acl = root / "passwd", root / "acl"
    upsert_password(passwd, line=done.password_line)
    upsert_acl(acl, box_block=done.acl, box_id="box-p1", central_user="central")
    password_file = root / "mqtt-password"
    password_file.write_text(done.password + "\n")
    good, short = free_port(), free_port()
    tls = []
    for port, name in ((good, "good"), (short, "short")):
        tls += [f"listener {port} 127.0.0.1", f"cafile {pki}/ca.crt",
                f"certfile {pki}/{name}.crt", f"keyfile {pki}/{name}.key"]  # fmt: skip
    broker = MosquittoBroker(
        workdir=root / "broker",
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT, *tls],
    )
    with broker:
        yield Town(broker, pki, good, short, password_file)


@contextlib.asynccontextmanager
async def box(town: Town, tmp_path: Path, **mqtt: Any) -> AsyncIterator[tuple[Path, Any]]:
    """Simulated sensors and a guidance sign, and a box config that names them."""
    sensors = {sid: "nwave-nps" for sid in SENSORS.values()}
    async with (
        ConcentratorSimulator(sensors=sensors, rate=5, seed=3) as sim,
        SignSimulator(units={3: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs,
    ):
        config = {
            "site": "testtown",
            "box_id": "box-p1",
            "data_dir": str(tmp_path / "data"),
            "mqtt": {
                "url": f"mqtts://127.0.0.1:{town.good_port}",
                "username": "box-p1",
                "password_file": str(town.password_file),
                "ca_file": str(town.pki / "ca.crt"),
                **mqtt,
            },
            "serial": {"conc": {"device": str(sim.path), "protocol": "concentrator"}},
            "lots": {
                "P1": {
                    "bays": {b: {"sensor": s, "format": "nwave-nps"} for b, s in SENSORS.items()}
                }
            },
            "sign_buses": {
                "bus1": {
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "port": signs.port,
                    "timeout_s": 0.3,
                    "signs": {"S1": {"unit": 3, "profile": "parkgrid-guidance", "lot": "P1"}},
                }
            },
            "outbox": {"events_max_bytes": 1 << 20, "state_max_bytes": 1 << 18},
        }
        path = tmp_path / "edge.toml"
        path.write_text(tomli_w.dumps(config))
        yield path, sim


def by_key(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.key: r for r in results}


async def test_doctor_all_well_is_green_but_for_an_honest_clock(town: Town, tmp_path: Path) -> None:
    """Every item passes; the clock item says what the kernel says, never a faked pass."""
    async with box(town, tmp_path) as (path, _sim):
        results = by_key(await diagnose(path, listen_s=10))
        ran = await parkgrid("edge", "doctor", "--config", str(path), "--listen-s", "10",
                             "--skip", "clock")  # fmt: skip
    failed = {k: r.detail for k, r in results.items() if r.status is not Status.PASS}
    if read_clock().synchronised:
        assert failed == {}
    else:
        assert failed == {"clock": failed.get("clock")}
        assert "clock not synchronised" in results["clock"].detail
    assert "3 mapped sensor(s) heard" in results["sensors"].detail
    assert "over TLS" in results["broker"].detail
    assert ran.code == 0, ran.out + ran.err
    assert "[SKIP] clock synchronised" in ran.out and "all green" in ran.out


async def test_doctor_fails_on_a_missing_sensor(town: Town, tmp_path: Path) -> None:
    """A mapped sensor that stays silent fails the sensors item, named with its bay and a fix."""
    async with box(town, tmp_path) as (path, sim):
        sim.core.silent.add(SENSORS["B003"])
        results = by_key(await diagnose(path, listen_s=1.5, skip=frozenset({"clock"})))
    sensors = results["sensors"]
    assert sensors.status is Status.FAIL
    assert "00A10003 (P1/B003)" in sensors.detail and "1 of 3" in sensors.detail
    assert "--listen-s 1800" in sensors.fix
    others = {k for k, r in results.items() if r.status is Status.FAIL}
    assert others == {"sensors"}


async def test_doctor_fails_on_an_unreachable_broker(town: Town, tmp_path: Path) -> None:
    """Nothing listening at the broker address fails the broker item with the network fix."""
    async with box(town, tmp_path, url=f"mqtts://127.0.0.1:{free_port()}") as (path, _sim):
        results = by_key(
            await diagnose(path, listen_s=10, skip=frozenset({"clock", "sensors", "signs"}))
        )
        ran = await parkgrid("edge", "doctor", "--config", str(path), "--listen-s", "10",
                             "--skip", "clock,sensors,signs")  # fmt: skip
    assert results["broker"].status is Status.FAIL
    assert "cannot reach" in results["broker"].detail and "firewall" in results["broker"].fix
    assert ran.code == 1
    assert "[FAIL] broker reachable with these credentials" in ran.out


async def test_doctor_fails_on_a_certificate_expiring_in_10_days(
    town: Town, tmp_path: Path
) -> None:
    """The broker's certificate, read in the handshake, expiring in 10 days fails the TLS item."""
    url = f"mqtts://127.0.0.1:{town.short_port}"
    async with box(town, tmp_path, url=url) as (path, _sim):
        results = by_key(await diagnose(path, listen_s=10, skip=frozenset({"clock"})))
    tls = results["tls"]
    assert tls.status is Status.FAIL
    assert "broker 127.0.0.1 (127.0.0.1) expires in" in tls.detail
    assert any(f"expires in {d} day(s)" in tls.detail for d in (9, 10))
    assert results["broker"].status is Status.PASS


async def test_doctor_fails_on_a_wrong_password(town: Town, tmp_path: Path) -> None:
    """A password the broker does not know fails the broker item with the provisioning fix."""
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-it\n")
    async with box(town, tmp_path, password_file=str(wrong)) as (path, _sim):
        results = by_key(
            await diagnose(path, listen_s=10, skip=frozenset({"clock", "sensors", "signs"}))
        )
    assert results["broker"].status is Status.FAIL
    assert "refused" in results["broker"].detail and "provision-box" in results["broker"].fix


async def test_doctor_fails_a_box_id_the_broker_user_may_not_publish_as(
    town: Town, tmp_path: Path
) -> None:
    """box_id changed by hand (or box-p2's edge.toml with box-p1's password): the broker
    accepts box-p1's login, but its ACL drops every publish under box-p2's topics, silently.
    Doctor said "[PASS] broker reachable" and central never heard the box."""
    async with box(town, tmp_path) as (path, _sim):
        text = path.read_text().replace('box_id = "box-p1"', 'box_id = "box-p2"')
        path.write_text(text)
        results = by_key(
            await diagnose(path, listen_s=10, skip=frozenset({"clock", "sensors", "signs"}))
        )
    broker = results["broker"]
    assert broker.status is Status.FAIL, broker
    assert "box-p2" in broker.detail and "box-p1" in broker.detail, broker.detail
    assert "parkgrid/v1/testtown/box-p2/" in broker.detail, broker.detail
    assert "provision-box" in broker.fix, broker.fix
