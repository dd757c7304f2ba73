"""``parkgrid edge doctor``: the checklist before leaving site, each item pass or fail + fix.

Items, in order (``--skip KEY`` leaves one out and reports it as SKIP)::

    config    the config file is valid
    serial    every serial device (sensor lines, RTU sign buses) exists, opens, is ours
    sensors   every mapped sensor is heard within --listen-s (stops early once all are);
              bays walk-test proved count as heard, a sensor it found dead fails at once
    signs     every configured sign answers at its unit id with its profile, no hw faults
    broker    the broker accepts a connection with the config's credentials (and TLS)
    tls       CA / client / broker certificates valid and not expiring within 30 days
    clock     the kernel says the clock is synchronised (adjtimex, as timedatectl does)
    disk      the data directory is writable and has room for the outbox's caps, twice

The sensor listening, the sign probes and the broker connection run at the same time, so
a doctor run takes about ``--listen-s`` (less when every sensor is heard sooner).

Certificates are read with the standard library, not ``cryptography`` (not a dependency of
the box, and one ssl function does it): ``ssl._ssl._test_decode_cert`` decodes a PEM file
into the same dict ``getpeercert()`` gives for the broker's certificate. It is CPython's
own, undocumented helper; where it is missing, ``openssl x509 -enddate`` is asked instead.

The clock item is honest: on a machine without NTP it fails, and only ``--skip clock``
leaves it out. Run doctor as the service user (``sudo -u parkgrid``), so the permission
checks are the box's own; stop the service first, so doctor is the only reader of the lines.

Exit: 0 every item passed (or was skipped), 1 an item failed, 2 the config file is missing
or the options are wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.agents.uplink.connection import tls_context  # the uplink's own
from edge.clock import read_clock
from edge.commission import bay_records
from edge.commission.checklist import (
    CHECKS,
    CheckResult,
    Status,
    failed,
    listed,
    passed,
    skipped,
)
from edge.commission.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    CommissionError,
    check_serial_device,
    probe_sign,
)
from edge.commission.sensor_check import check_sensors
from edge.config import ConfigError, EdgeConfig, load_config
from edge.drivers.errors import SignBusError, SignUnitTimeout
from edge.drivers.modbus_client import ModbusClient

CERT_WARN_DAYS = 30
OUTBOX_MARGIN = 2  # SQLite's WAL and a checkpoint can briefly need the data twice
# The hardware faults of a sign worth a visit; watchdog_expired only means no box wrote yet.
SIGN_HARDWARE_FAULTS = frozenset({"led_module", "power", "over_temperature", "light_sensor"})
RESULTS_MAX_AGE_H = 24  # a walk older than this is not reused: sensors may have moved since


# --- the checks -------------------------------------------------------------------------------


def check_config(path: Path) -> tuple[CheckResult, EdgeConfig | None]:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        if isinstance(exc, PermissionError):
            fix = (
                "run doctor as the service user, who may read the box's config (0640 "
                "root:parkgrid): sudo -u parkgrid /opt/parkgrid/bin/parkgrid edge doctor "
                f"--config {path}"
            )
        else:
            fix = "check the path given to --config."
        return failed("config", f"cannot read {path}: {exc.strerror or exc}", fix), None
    try:
        config = load_config(path)
    except ConfigError as exc:
        return (
            failed(
                "config",
                f"{len(exc.problems)} problem(s): {listed([str(p) for p in exc.problems])}",
                f"run `parkgrid edge check-config {path}` and correct each line it names.",
            ),
            None,
        )
    bays = sum(lot.capacity for lot in config.lots.values())
    signs = sum(len(bus.signs) for bus in config.sign_buses.values())
    return (
        passed(
            "config",
            f"box {config.box_id} of site {config.site}: {bays} bay(s) in {len(config.lots)} "
            f"lot(s), {len(config.serial)} serial line(s), {signs} sign(s)",
        ),
        config,
    )


def check_serial(config: EdgeConfig) -> CheckResult:
    devices = {line.device: line.baud for line in config.serial.values()}
    for bus in config.sign_buses.values():
        if bus.transport == "rtu" and bus.device:
            devices[bus.device] = bus.baud
    if not devices:
        return passed("serial", "no serial devices in the config")
    problems = []
    for device, baud in devices.items():
        try:
            check_serial_device(device, baud=baud)
        except CommissionError as exc:
            problems.append(exc.reason)
    if problems:
        return failed(
            "serial",
            "; ".join(problems),
            "plug the adapter in, put its /dev/serial/by-id/ path in the config, and give the "
            "service user the dialout group.",
        )
    return passed("serial", f"{len(devices)} device(s) open: {listed(sorted(devices))}")


async def check_signs(config: EdgeConfig) -> CheckResult:
    total = sum(len(bus.signs) for bus in config.sign_buses.values())
    if not total:
        return passed("signs", "no signs in the config")
    problems: list[str] = []
    for bus_id, bus in config.sign_buses.items():
        client = ModbusClient.from_config(bus_id, bus)
        try:
            await client.connect()
        except SignBusError as exc:
            problems.append(f"bus {bus_id}: {exc.reason}")
            continue
        try:
            for sign_id, sign in bus.signs.items():
                name = f"{bus_id}/{sign_id} (unit {sign.unit})"
                try:
                    probe = await probe_sign(client, sign.unit)
                except SignUnitTimeout:
                    problems.append(f"{name}: no answer")
                    continue
                except SignBusError as exc:
                    problems.append(f"{name}: {exc.reason}")
                    continue
                if probe.profile != sign.profile:
                    what = probe.profile or f"an unknown device ({probe.note})"
                    problems.append(f"{name}: answers as {what}, config says {sign.profile}")
                elif probe.faults & SIGN_HARDWARE_FAULTS:
                    faults = ", ".join(sorted(probe.faults & SIGN_HARDWARE_FAULTS))
                    problems.append(f"{name}: reports faults {faults}")
        finally:
            client.close()
    if problems:
        return failed(
            "signs",
            "; ".join(problems),
            "check each sign's power, A/B wiring and termination, and its unit id and profile "
            "with `parkgrid edge scan-signs`.",
        )
    return passed("signs", f"all {total} sign(s) answer with their configured profile")


@dataclass(slots=True)
class BrokerOutcome:
    """What one connection attempt learned: the CONNACK, and the broker's certificate."""

    result: CheckResult
    peer_cert: dict[str, Any] | None = None
    tls_error: str | None = None
    notes: list[str] = field(default_factory=list)


def check_broker(config: EdgeConfig, *, timeout_s: float) -> BrokerOutcome:
    mqtt = config.mqtt
    where = f"{mqtt.host}:{mqtt.port}"
    try:
        password = mqtt.password()
    except OSError as exc:
        return BrokerOutcome(
            failed(
                "broker",
                f"cannot read the password file {mqtt.password_file}: {exc.strerror}",
                "put the password from provision-box in that file, readable by the service "
                "user only (chmod 600).",
            )
        )
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"parkgrid-doctor-{config.box_id}-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv311,
    )
    if mqtt.username is not None:
        client.username_pw_set(mqtt.username, password)
    if mqtt.tls:
        try:
            client.tls_set_context(tls_context(mqtt))
        except (OSError, ssl.SSLError) as exc:
            return BrokerOutcome(
                failed(
                    "broker",
                    f"cannot load the TLS files: {exc}",
                    "check ca_file, cert_file and key_file in [mqtt] point at readable PEM files.",
                ),
                tls_error=str(exc),
            )
    answer: list[ReasonCode] = []

    def on_connect(_c: paho.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        answer.append(reason)

    client.on_connect = on_connect
    fix_network = (
        f"check the broker address {where} in [mqtt] url, the network route and the firewall."
    )
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=max(10, int(timeout_s) * 2))
    except ssl.SSLCertVerificationError as exc:
        return BrokerOutcome(
            failed(
                "broker",
                f"TLS handshake with {where} failed: {exc.verify_message}",
                "install the town's CA certificate as [mqtt] ca_file and check the broker's "
                "certificate names this host.",
            ),
            tls_error=exc.verify_message,
        )
    except ssl.SSLError as exc:
        return BrokerOutcome(
            failed(
                "broker",
                f"TLS with {where} failed: {exc}",
                "use mqtts:// only on the broker's TLS port, and check the certificates.",
            ),
            tls_error=str(exc),
        )
    except OSError as exc:
        return BrokerOutcome(
            failed("broker", f"cannot reach {where}: {exc.strerror or exc}", fix_network)
        )
    peer: dict[str, Any] | None = None
    sock = client.socket()
    if isinstance(sock, ssl.SSLSocket):
        peer = sock.getpeercert()
    deadline = time.monotonic() + timeout_s
    try:
        while not answer and time.monotonic() < deadline:
            client.loop(timeout=0.05)
    finally:
        client.disconnect()
    if not answer:
        return BrokerOutcome(
            failed(
                "broker",
                f"{where} accepted TCP but sent no CONNACK in {timeout_s:g} s",
                fix_network,
            ),
            peer_cert=peer,
        )
    reason = answer[0]
    if reason.is_failure:
        if reason.value in (134, 135):
            fix = (
                "re-run provision-box for this box and install the password file it wrote, "
                "or check the broker's password file has this box's line."
            )
        else:
            fix = f"look at the broker's log for why it refused {mqtt.username or 'anonymous'}."
        return BrokerOutcome(
            failed("broker", f"{where} refused the connection: {reason}", fix), peer_cert=peer
        )
    user = mqtt.username or "anonymous"
    tls = " over TLS" if mqtt.tls else " (no TLS)"
    if mqtt.username is not None and mqtt.username != config.box_id:
        # provision-box names each box's broker user after the box, and its ACL lets that
        # user write only under its own box id: the broker drops the rest without a word
        prefix = f"parkgrid/v1/{config.site}/{config.box_id}/"
        return BrokerOutcome(
            failed(
                "broker",
                f"connected to {where} as {user}{tls}, but this config is box "
                f"{config.box_id}: the broker's ACL lets {user} publish only under its own "
                f"box id, so everything under {prefix} would be dropped",
                f"install this box's own files from provision-box (edge.toml and "
                f"mqtt-password of the same box), or correct box_id / [mqtt] username "
                f"(both {user} if this is box {user}).",
            ),
            peer_cert=peer,
        )
    return BrokerOutcome(passed("broker", f"connected to {where} as {user}{tls}"), peer_cert=peer)


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def read_certificates(path: Path) -> list[dict[str, Any]]:
    """Each certificate of a PEM file as a ``getpeercert()``-style dict (subject, notAfter)."""
    blocks = _PEM.findall(path.read_bytes())
    if not blocks:
        raise ValueError(f"{path} holds no PEM certificate")
    decoded = []
    for block in blocks:
        with tempfile.NamedTemporaryFile(suffix=".pem") as tmp:
            tmp.write(block + b"\n")
            tmp.flush()
            decoded.append(_decode_cert_file(tmp.name))
    return decoded


def _decode_cert_file(path: str) -> dict[str, Any]:
    decoder: Callable[[str], dict[str, Any]] | None = getattr(
        getattr(ssl, "_ssl", None), "_test_decode_cert", None
    )
    if decoder is not None:
        return decoder(path)
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-subject", "-in", path],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    end = re.search(r"notAfter=(.+)", out)
    subject = re.search(r"subject=\s*(.+)", out)
    if end is None:
        raise ValueError(f"openssl could not read {path}")
    cn = subject.group(1).strip() if subject else "?"
    return {"notAfter": end.group(1).strip(), "subject": ((("commonName", cn),),)}


def _common_name(cert: Mapping[str, Any]) -> str:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return "?"


def check_tls(config: EdgeConfig, broker: BrokerOutcome | None, *, now: float) -> CheckResult:
    mqtt = config.mqtt
    if not mqtt.tls:
        return skipped(
            "tls",
            "not used: the broker URL is mqtt:// without TLS (a town's broker should be "
            "mqtts://, see deploy/mosquitto/)",
        )
    certs: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for label, path in (("CA", mqtt.ca_file), ("client", mqtt.cert_file)):
        if path is None:
            continue
        try:
            certs.extend((f"{label} {path}", c) for c in read_certificates(path))
        except (OSError, ValueError, ssl.SSLError, subprocess.CalledProcessError) as exc:
            problems.append(f"{label} certificate {path} unreadable: {exc}")
    if broker is not None and broker.peer_cert:
        certs.append((f"broker {mqtt.host}", broker.peer_cert))
    elif broker is not None and broker.tls_error:
        problems.append(f"the broker's certificate does not verify: {broker.tls_error}")
    soonest: tuple[float, str] | None = None
    for label, cert in certs:
        name = f"{label} ({_common_name(cert)})"
        not_after = ssl.cert_time_to_seconds(cert["notAfter"])
        not_before = cert.get("notBefore")
        if not_before and ssl.cert_time_to_seconds(not_before) > now:
            problems.append(f"{name} is not valid before {not_before}")
        days = (not_after - now) / 86400
        date = datetime.fromtimestamp(not_after, UTC).strftime("%Y-%m-%d")
        if days < 0:
            problems.append(f"{name} expired on {date}")
        elif days < CERT_WARN_DAYS:
            problems.append(f"{name} expires in {days:.0f} day(s), on {date}")
        if soonest is None or not_after < soonest[0]:
            soonest = (not_after, f"{name} on {date}")
    if problems:
        return failed(
            "tls",
            "; ".join(problems),
            "issue a new certificate from the town's CA (deploy/mosquitto/README.md) and "
            "install it before the date shown.",
        )
    if not certs:
        return failed(
            "tls",
            "TLS is on but no certificate could be read (broker unreachable, no ca_file)",
            "set [mqtt] ca_file to the town's CA certificate and make the broker reachable.",
        )
    assert soonest is not None
    return passed("tls", f"{len(certs)} certificate(s) valid; the first to expire: {soonest[1]}")


def check_clock() -> CheckResult:
    reading = read_clock()
    if reading.synchronised:
        error = "" if reading.max_error_s is None else f", max error {reading.max_error_s:.3f} s"
        return passed("clock", f"the kernel reports the clock synchronised{error}")
    if reading.source is None:
        detail = "the clock's state cannot be read here (no adjtimex)"
    else:
        detail = "clock not synchronised: the kernel reports no time daemon has synchronised it"
    return failed(
        "clock",
        detail,
        "enable NTP (sudo timedatectl set-ntp true, or install chrony) and allow UDP 123 to "
        "the town's NTP server.",
    )


def check_disk(config: EdgeConfig) -> CheckResult:
    need = (config.outbox.events_max_bytes + config.outbox.state_max_bytes) * OUTBOX_MARGIN
    path = config.data_dir
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        what = "the data directory" if existing == path else f"{existing} (to create it)"
        return failed(
            "disk",
            f"{what} is not writable by this user",
            f"create {path} owned by the service user (systemd's StateDirectory does), and "
            "run doctor as that user.",
        )
    free = shutil.disk_usage(existing).free
    mib = 1024 * 1024
    if free < need:
        return failed(
            "disk",
            f"{free / mib:.0f} MiB free at {existing}, the outbox may need {need / mib:.0f} MiB",
            "free space on that file system, or lower [outbox] events_max_bytes.",
        )
    return passed("disk", f"{free / mib:.0f} MiB free at {existing} (outbox needs up to "
                         f"{need / mib:.0f} MiB)")  # fmt: skip


# --- the run ----------------------------------------------------------------------------------


async def diagnose(
    config_path: Path,
    *,
    listen_s: float,
    skip: frozenset[str] = frozenset(),
    connect_timeout_s: float = 5.0,
    results_path: Path | None = None,
    results_max_age_s: float = RESULTS_MAX_AGE_H * 3600,
) -> list[CheckResult]:
    """Every item of the checklist, in CHECKS order.

    ``results_path``: walk-test's record (default ``<data_dir>/commission/bays.json``).
    """
    results: dict[str, CheckResult] = {}
    first, config = check_config(config_path)
    results["config"] = first
    if config is None:
        return [
            results["config"],
            *(skipped(k, "the config is not valid") for k in list(CHECKS)[1:]),
        ]
    if "serial" not in skip:
        results["serial"] = check_serial(config)
    broker: BrokerOutcome | None = None

    async def sensors() -> None:
        if "sensors" not in skip:
            walked = bay_records.load(results_path or bay_records.default_path(config))
            records = bay_records.current(
                walked, config, now=time.time(), max_age_s=results_max_age_s
            )
            results["sensors"] = await check_sensors(config, listen_s=listen_s, records=records)

    async def signs() -> None:
        if "signs" not in skip:
            results["signs"] = await check_signs(config)

    async def connect() -> None:
        nonlocal broker
        if "broker" in skip and "tls" in skip:
            return
        broker = await asyncio.to_thread(check_broker, config, timeout_s=connect_timeout_s)
        if "broker" not in skip:
            results["broker"] = broker.result

    await asyncio.gather(sensors(), signs(), connect())
    if "tls" not in skip:
        results["tls"] = check_tls(config, broker, now=time.time())
    if "clock" not in skip:
        results["clock"] = check_clock()
    if "disk" not in skip:
        results["disk"] = check_disk(config)
    return [results.get(k) or skipped(k, "skipped (--skip)") for k in CHECKS]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the box's edge.toml")
    parser.add_argument(
        "--listen-s", type=float, default=60, help="listen this long for the sensors (60)"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="ITEM",
        help=f"leave an item out (repeatable): {', '.join(CHECKS)}",
    )
    parser.add_argument("--connect-timeout-s", type=float, default=5.0, help="broker (5)")
    parser.add_argument(
        "--results",
        help="walk-test's record of the bays (default: <data_dir>/commission/bays.json)",
    )
    parser.add_argument(
        "--results-max-age-h",
        type=float,
        default=RESULTS_MAX_AGE_H,
        help=f"reuse walk results younger than this ({RESULTS_MAX_AGE_H}); 0: never",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document")


def run(args: argparse.Namespace) -> int:
    skip = frozenset(s.strip() for item in args.skip for s in item.split(",") if s.strip())
    unknown = skip - set(CHECKS)
    if unknown:
        print(f"doctor: unknown item(s) {sorted(unknown)}; known: {', '.join(CHECKS)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    if args.listen_s <= 0 or args.connect_timeout_s <= 0:
        print("doctor: --listen-s and --connect-timeout-s must be positive", file=sys.stderr)
        return EXIT_BAD_INPUT
    path = Path(args.config)
    try:
        path.stat()
    except FileNotFoundError:
        print(f"doctor: {path} does not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError:
        pass  # named with its reason by the config item
    results = asyncio.run(
        diagnose(
            path,
            listen_s=args.listen_s,
            skip=skip,
            connect_timeout_s=args.connect_timeout_s,
            results_path=Path(args.results) if args.results else None,
            results_max_age_s=args.results_max_age_h * 3600,
        )
    )
    failed = [r for r in results if r.status is Status.FAIL]
    if args.json:
        doc = {"config": str(path), "ok": not failed, "items": [r.as_json() for r in results]}
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print(format_results(results))
    return EXIT_FAILED if failed else EXIT_OK


def format_results(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"[{r.status.value}] {r.title}: {r.detail}")
        if r.fix:
            lines.append(f"       fix: {r.fix}")
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    lines.append(
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, "
        f"{counts[Status.SKIP]} skipped" + ("" if counts[Status.FAIL] else ": all green")
    )
    return "\n".join(lines)
