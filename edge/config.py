"""The edge box configuration: one TOML file, validated by pydantic, errors with their path.

A box's file names its site and box id, how it reaches the broker, its serial lines (where
the sensors are heard), its lots and bays, its stall zones, its sign buses and what each
sign shows, and the limits of its outbox. ``load_config(path)`` returns an ``EdgeConfig`` or
raises ``ConfigError`` carrying every problem found, each as a ``ConfigProblem`` with a
dotted path (``lots.P1.bays.B017.sensor``) and a plain sentence; the CLI prints them and
exits 2. Cross-references (a sign naming a lot that does not exist, a sensor mapped to two
bays) are checked after the field-by-field validation, with the same kind of path.

Sensor ids are strings: radio sensors heard through a concentrator are their 32-bit id as
8 upper-case hex digits (``00A1B2C3``); detectors behind an M77 receiver are
``M77-<host>-<detector>`` with three digits each (``M77-001-007``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from firmware_protocols.sensors import FORMATS as SENSOR_FORMATS
from firmware_protocols.signs import PROFILES as SIGN_PROFILES
from firmware_protocols.signs import Message
from site_model.configfile import (
    ConfigFileError,
    file_hash,
    load_file_data,
    validate_file_data,
)
from site_model.configfile import ConfigProblem as ConfigProblem  # re-exported: edge's name
from site_model.edge_config import TREND_WINDOW_S
from site_model.timezones import TimeZoneName
from site_model.zone_classes import CLOSING_SOON_S, ZONE_CLASS_DEFAULTS
from site_model.zone_classes import SeverityName as SeverityName  # re-exported: edge's name

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN)]
M77_FORMAT = "m77-ascii"
RADIO_SENSOR_ID = re.compile(r"^[0-9A-F]{8}$")
M77_SENSOR_ID = re.compile(r"^M77-(\d{3})-(\d{3})$")


class ConfigError(ConfigFileError):
    """A configuration that cannot be used; ``problems`` lists every reason."""


RADIO_ID_DIGITS = 8


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise_sensor_id(value: object) -> str:
    """Accept ``0x00a1b2c3``, ``00a1b2c3`` or ``M77-1-7``; give the canonical form.

    A radio sensor's id is printed on it as 8 hex digits. Fewer are refused, not padded:
    a dropped digit must not quietly become another sensor's id. A bare TOML number is
    refused too (``sensor = 10001234`` would be read as decimal): ids are quoted strings.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f"{value!r} is not a sensor id: write it in quotes, as printed on the sensor "
            "('00A1B2C3'), or 'M77-<host>-<detector>'"
        )
    text = value.strip()
    m77 = re.fullmatch(r"(?i)m77-(\d{1,3})-(\d{1,3})", text)
    if m77:
        return f"M77-{int(m77[1]):03d}-{int(m77[2]):03d}"
    digits = text[2:] if text.lower().startswith("0x") else text
    if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", digits):
        raise ValueError(
            f"{value!r} is not a sensor id: use the 8 hex digits printed on the sensor "
            "('00A1B2C3') or 'M77-<host>-<detector>'"
        )
    if len(digits) < RADIO_ID_DIGITS:
        raise ValueError(
            f"{value!r} has {len(digits)} hex digits, a radio sensor id has "
            f"{RADIO_ID_DIGITS}: copy all of them from the sensor (leading zeros too)"
        )
    return digits.upper()


SensorId = Annotated[str, Field(min_length=1)]


class Credentials(_Model):
    """Where the MQTT password comes from: a file (preferred) or an environment variable."""

    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Credentials:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give password_file or password_env, not both")
        return self

    def password(self) -> str | None:
        """Read the secret now (never stored in the model, never logged)."""
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        if self.password_env is not None:
            return os.environ.get(self.password_env)
        return None


class MqttConfig(Credentials):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt:// or mqtts://host:port")
    client_id: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    max_inflight: int = Field(default=200, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"mqtts?://[^/:\s]+(:\d{1,5})?/?", value):
            raise ValueError(f"{value!r} is not an MQTT URL such as mqtt://broker:1883")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pairs(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        return self

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].split(":")[0]

    @property
    def port(self) -> int:
        rest = self.url.split("://", 1)[1]
        if ":" in rest:
            return int(rest.split(":")[1])
        return 8883 if self.tls else 1883

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://") or self.ca_file is not None


class SerialLineConfig(_Model):
    """A serial line where sensors are heard: a concentrator, or M77 receivers polled."""

    device: str = Field(description="device path; prefer /dev/serial/by-id/...")
    protocol: Literal["concentrator", "m77-ascii"]
    baud: int = Field(default=115200, ge=300, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    receiver_hosts: list[Annotated[int, Field(ge=0, le=999)]] = Field(default_factory=list)
    poll_interval_s: float = Field(default=1.0, gt=0, le=3600)
    answer_timeout_s: float = Field(default=0.5, gt=0, le=60)
    inter_frame_gap_ms: float = Field(default=5.0, ge=0, le=10_000)
    reopen_backoff_max_s: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _hosts_match_protocol(self) -> SerialLineConfig:
        if self.protocol == "m77-ascii" and not self.receiver_hosts:
            raise ValueError("an m77-ascii line needs receiver_hosts, the receivers to poll")
        if self.protocol == "concentrator" and self.receiver_hosts:
            raise ValueError("receiver_hosts only applies to m77-ascii lines")
        return self


class BayConfig(_Model):
    sensor: SensorId
    format: str
    heartbeat_timeout_s: float | None = Field(default=None, gt=0)
    label: str | None = None

    @field_validator("sensor", mode="before")
    @classmethod
    def _sensor(cls, value: object) -> str:
        return normalise_sensor_id(value)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        known = sorted([*SENSOR_FORMATS, M77_FORMAT])
        if value not in known:
            raise ValueError(f"unknown sensor format {value!r}; known: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _id_matches_format(self) -> BayConfig:
        is_m77 = bool(M77_SENSOR_ID.match(self.sensor))
        if is_m77 != (self.format == M77_FORMAT):
            raise ValueError(
                "M77 detectors use format 'm77-ascii' and ids 'M77-<host>-<detector>'; "
                "radio sensors use 8 hex digits"
            )
        return self


class LotThresholds(_Model):
    """DATEX II style almost-full thresholds, in percent of the bays in service.

    Full is not a percentage: see ``LotConfig.full_band``."""

    almost_full_increasing: float = Field(default=90, gt=0, le=100)
    almost_full_decreasing: float = Field(default=85, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> LotThresholds:
        if self.almost_full_decreasing > self.almost_full_increasing:
            raise ValueError("almost_full_decreasing must not exceed almost_full_increasing")
        return self


class LotConfig(_Model):
    name: str | None = None
    thresholds: LotThresholds = LotThresholds()
    full_band: int = Field(
        default=0,
        ge=0,
        description="the lot counts as full (its sign sends drivers on) while this many bays "
        "or fewer are free; 0: full only when no bay is free",
    )
    bays: dict[Ident, BayConfig] = Field(default_factory=dict)
    bay_ids: list[Ident] | None = Field(
        default=None,
        description="the lot's bays as the site file (central's push) lists them, sensors or "
        "not; a bay without a sensor in bays counts as unknown. Absent: the bays mapped",
    )

    @property
    def capacity(self) -> int:
        return len(self.every_bay_id)

    @property
    def every_bay_id(self) -> list[str]:
        return list(self.bays) if self.bay_ids is None else list(self.bay_ids)


class FallbackTarget(_Model):
    """Where a guidance sign sends drivers when its own lot is full."""

    lot: Ident
    arrow: Literal["none", "left", "right", "ahead"] = "ahead"


class SignConfig(_Model):
    """One sign on a bus: its unit id, profile, and what it shows."""

    unit: int = Field(ge=1, le=247)
    profile: str
    lot: Ident | None = Field(default=None, description="guidance: the lot whose count it shows")
    arrow: Literal["none", "left", "right", "ahead"] = "none"
    fallback: list[FallbackTarget] = Field(
        default_factory=list, description="lots to point to when full, nearest first"
    )
    zone: Ident | None = Field(default=None, description="warning: the zone it warns for")
    message: str | None = Field(default=None, description="warning: a fixed message")
    brightness: int = Field(default=80, ge=0, le=100)

    @field_validator("message")
    @classmethod
    def _message(cls, value: str | None) -> str | None:
        if value is None:
            return None
        known = [name.lower() for name in Message.__members__]
        if value.lower().replace("-", "_") not in known:
            raise ValueError(f"unknown message {value!r}; known: {', '.join(known)}")
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        if value not in SIGN_PROFILES:
            raise ValueError(f"unknown sign profile {value!r}; known: {', '.join(SIGN_PROFILES)}")
        return value


class SignBusConfig(_Model):
    """A Modbus bus: RTU on a serial line, or TCP to host:port."""

    transport: Literal["rtu", "tcp"]
    device: str | None = None
    baud: int = Field(default=9600, ge=1200, le=115200)
    parity: Literal["N", "E", "O"] = "N"
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=0.5, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=10)
    inter_frame_gap_ms: float = Field(default=5.0, ge=0, le=1000)
    down_after_failures: int = Field(default=3, ge=1, le=100)
    retry_down_after_s: float = Field(default=10.0, gt=0, le=3600)
    refresh_interval_s: float = Field(default=10.0, gt=0, le=3600)
    heartbeat_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="between refreshes, read each sign's status registers (uptime, faults: "
        "6 registers, one short frame) this often, so a reboot or an expired watchdog is "
        "seen and repaired within about this time; profiles without status registers read "
        "their display back instead",
    )
    watchdog_timeout_s: int = Field(default=60, ge=5, le=3600)
    signs: dict[Ident, SignConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _transport_fields(self) -> SignBusConfig:
        if self.transport == "rtu" and not self.device:
            raise ValueError("an rtu bus needs device, the serial line of the RS-485 adapter")
        if self.transport == "tcp" and not self.host:
            raise ValueError("a tcp bus needs host (and port, 502 by default)")
        if self.refresh_interval_s * 2 > self.watchdog_timeout_s:
            raise ValueError(
                "refresh_interval_s must be at most half of watchdog_timeout_s, or the signs "
                "blank between refreshes"
            )
        units = [s.unit for s in self.signs.values()]
        dupes = sorted({u for u in units if units.count(u) > 1})
        if dupes:
            raise ValueError(f"unit id(s) {dupes} used by more than one sign on this bus")
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ZoneClassName = Literal["prohibited", "controlled", "regulated"]


class DayWindowConfig(_Model):
    """A window in local time; an ``end`` not after ``start`` ends the next day."""

    start: dt.time
    end: dt.time


class WeeklyWindowConfig(DayWindowConfig):
    days: list[Weekday] = Field(min_length=1, description="days the window starts on")


class DateOverrideConfig(_Model):
    """A date whose windows replace the weekly ones; no windows means closed all day."""

    date: dt.date
    windows: list[DayWindowConfig] = Field(default_factory=list)
    note: str | None = None


class LadderStepConfig(_Model):
    after_s: float = Field(ge=0, description="seconds after the grace period ends")
    severity: SeverityName


def check_ladder(times: Iterable[float]) -> None:
    """A ladder climbs: each step later than the one before."""
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ValueError("ladder steps must come in order, each after_s later than the last")


class ZoneMessages(_Model):
    """What the zone's warning signs show in each phase (a message of the sign's table)."""

    open: str = "blank"
    closing_soon: str = "stall_zone_closing"
    closing: str = "stall_zone_closing"
    closed: str = "stall_zone_closed"
    always_closed: str = "no_parking"

    @field_validator("*")
    @classmethod
    def _known(cls, value: str) -> str:
        known = [name.lower() for name in Message.__members__]
        if value.lower().replace("-", "_") not in known:
            raise ValueError(f"unknown message {value!r}; known: {', '.join(known)}")
        return value.lower().replace("-", "_")


class ZoneConfig(_Model):
    """A stall zone or no-parking kerb: its class, bays, windows, grace and ladder."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    zone_class: ZoneClassName = Field(alias="class")
    bays: dict[Ident, BayConfig] = Field(default_factory=dict)
    bay_ids: list[Ident] | None = Field(
        default=None, description="the zone's bays as central pushes them (as a lot's)"
    )
    windows: list[WeeklyWindowConfig] = Field(default_factory=list)
    overrides: list[DateOverrideConfig] = Field(default_factory=list)
    grace_s: float | None = Field(default=None, ge=0, description="default by class")
    closing_soon_s: float = Field(default=CLOSING_SOON_S, ge=0)
    ladder: list[LadderStepConfig] | None = Field(default=None, description="default by class")
    messages: ZoneMessages = ZoneMessages()

    @model_validator(mode="after")
    def _consistent(self) -> ZoneConfig:
        if self.zone_class == "prohibited" and (self.windows or self.overrides):
            raise ValueError("a prohibited zone is never open: it takes no windows or overrides")
        dates = [o.date for o in self.overrides]
        dupes = sorted({str(d) for d in dates if dates.count(d) > 1})
        if dupes:
            raise ValueError(f"date(s) {', '.join(dupes)} overridden more than once")
        if self.ladder is not None:
            if not self.ladder:
                raise ValueError("a ladder needs at least one step (or leave it out)")
            check_ladder(step.after_s for step in self.ladder)
        return self

    @property
    def every_bay_id(self) -> list[str]:
        return list(self.bays) if self.bay_ids is None else list(self.bay_ids)

    @property
    def grace(self) -> float:
        return self.grace_s if self.grace_s is not None else ZONE_CLASS_DEFAULTS[self.zone_class][0]

    def ladder_steps(self) -> list[tuple[float, SeverityName]]:
        if self.ladder is not None:
            return [(step.after_s, step.severity) for step in self.ladder]
        return list(ZONE_CLASS_DEFAULTS[self.zone_class][1])


class SensorDefaults(_Model):
    heartbeat_timeout_s: float = Field(default=1800, gt=0, description="silent longer: unknown")
    min_dwell_s: float = Field(default=0, ge=0, description="flap filter; 0 switches at once")
    trend_window_s: float = Field(
        default=TREND_WINDOW_S, gt=0, le=86400, description="a lot's trend: change over this long"
    )
    battery_low_mv: int = Field(default=3000, ge=0)
    temperature_range_c: tuple[float, float] = (-40.0, 85.0)


class OutboxConfig(_Model):
    events_max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    state_max_bytes: int = Field(default=8 * 1024 * 1024, ge=16 * 1024)
    resend_after_s: float = Field(default=30, gt=0, le=3600)
    resend_window_min: int = Field(
        default=500,
        ge=1,
        le=1_000_000,
        description="events published again, oldest first, when no ack came for resend_after_s",
    )
    send_window_max: int = Field(
        # Sized with the broker's queue for central (docs/scale.md, "Live first at central"):
        # every replaying box may have this many outstanding at once.
        default=10_000,
        ge=1,
        le=10_000_000,
        description="most events outstanding above central's ack; the window widens to it",
    )


class HealthConfig(_Model):
    listen: str = Field(default="127.0.0.1:9108", description="host:port of /healthz, /metrics")
    status_interval_s: float = Field(default=60, gt=0)
    config_confirm_within_s: float = Field(
        default=300,
        gt=0,
        le=3600,
        description="a configuration pushed by central must pass the health gate within this "
        "long, or the box goes back to the one it ran before (docs/fleet.md); longer than the "
        "concentrator's own heartbeat, since every serial line must hear a frame",
    )


class EdgeConfig(_Model):
    site: Ident
    box_id: Ident
    timezone: TimeZoneName = "Asia/Shanghai"
    data_dir: Path = Path("/var/lib/parkgrid")
    mqtt: MqttConfig = MqttConfig()
    serial: dict[Ident, SerialLineConfig] = Field(default_factory=dict)
    lots: dict[Ident, LotConfig] = Field(default_factory=dict)
    sign_buses: dict[Ident, SignBusConfig] = Field(default_factory=dict)
    zones: dict[Ident, ZoneConfig] = Field(default_factory=dict)
    sensors: SensorDefaults = SensorDefaults()
    outbox: OutboxConfig = OutboxConfig()
    health: HealthConfig = HealthConfig()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def bays(self) -> Iterable[tuple[str, str, BayConfig]]:
        """Every (lot_id, bay_id, bay) of the box."""
        for lot_id, lot in self.lots.items():
            for bay_id, bay in lot.bays.items():
                yield lot_id, bay_id, bay

    def zone_bays(self) -> Iterable[tuple[str, str, BayConfig]]:
        """Every (zone_id, bay_id, bay) of the box: stall pitches and kerb detectors."""
        for zone_id, zone in self.zones.items():
            for bay_id, bay in zone.bays.items():
                yield zone_id, bay_id, bay

    def sensorless_bays(self) -> Iterable[tuple[str | None, str | None, str]]:
        """Every (lot_id, zone_id, bay_id) of a bay listed without a sensor mapped: a real
        bay, unknown until a technician commissions its sensor."""
        for lot_id, lot in self.lots.items():
            for bay_id in lot.every_bay_id:
                if bay_id not in lot.bays:
                    yield lot_id, None, bay_id
        for zone_id, zone in self.zones.items():
            for bay_id in zone.every_bay_id:
                if bay_id not in zone.bays:
                    yield None, zone_id, bay_id


def cross_check(config: EdgeConfig) -> list[ConfigProblem]:
    """Problems that span sections: references, duplicates, lines the bays need."""
    problems: list[ConfigProblem] = []
    seen: dict[str, str] = {}
    every_bay = [("lots", *item) for item in config.bays()]
    every_bay += [("zones", *item) for item in config.zone_bays()]
    bay_ids: dict[str, str] = {}
    areas: list[tuple[str, str, LotConfig | ZoneConfig]] = [
        ("lots", lot_id, lot) for lot_id, lot in config.lots.items()
    ]
    areas += [("zones", zone_id, zone) for zone_id, zone in config.zones.items()]
    for section, area_id, area in areas:
        for bay_id in area.every_bay_id:
            where = f"{section}.{area_id}.{'bays' if area.bay_ids is None else 'bay_ids'}"
            if bay_id in bay_ids:
                problems.append(
                    ConfigProblem(f"{where}.{bay_id}", f"bay id already used by {bay_ids[bay_id]}")
                )
            else:
                bay_ids[bay_id] = f"{where}.{bay_id}"
        if area.bay_ids is not None:
            for bay_id in area.bays:
                if bay_id not in area.bay_ids:
                    problems.append(
                        ConfigProblem(
                            f"{section}.{area_id}.bays.{bay_id}",
                            "a sensor mapped to a bay the lot's bay_ids do not list",
                        )
                    )
    for section, lot_id, bay_id, bay in every_bay:
        path = f"{section}.{lot_id}.bays.{bay_id}.sensor"
        if bay.sensor in seen:
            problems.append(
                ConfigProblem(path, f"sensor {bay.sensor} is already mapped to {seen[bay.sensor]}")
            )
        else:
            seen[bay.sensor] = f"{section}.{lot_id}.bays.{bay_id}"
    protocols = {line.protocol for line in config.serial.values()}
    hosts = {h for line in config.serial.values() for h in line.receiver_hosts}
    for section, lot_id, bay_id, bay in every_bay:
        path = f"{section}.{lot_id}.bays.{bay_id}"
        if bay.format == M77_FORMAT:
            match = M77_SENSOR_ID.match(bay.sensor)
            if match and int(match[1]) not in hosts:
                problems.append(
                    ConfigProblem(
                        f"{path}.sensor",
                        f"receiver host {int(match[1])} is not polled by any m77-ascii line",
                    )
                )
        elif "concentrator" not in protocols:
            problems.append(
                ConfigProblem(f"{path}.format", "radio sensors need a concentrator serial line")
            )
    devices: dict[str, str] = {}
    for name, line in config.serial.items():
        if line.device in devices:
            problems.append(
                ConfigProblem(
                    f"serial.{name}.device", f"device already used by {devices[line.device]}"
                )
            )
        devices[line.device] = f"serial.{name}"
    for bus_id, bus in config.sign_buses.items():
        if bus.transport == "rtu" and bus.device in devices:
            problems.append(
                ConfigProblem(
                    f"sign_buses.{bus_id}.device",
                    f"device already used by {devices[bus.device or '']}",
                )
            )
        for sign_id, sign in bus.signs.items():
            path = f"sign_buses.{bus_id}.signs.{sign_id}"
            guidance = sign.profile != "parkgrid-warning"
            if guidance and sign.lot is None:
                problems.append(
                    ConfigProblem(f"{path}.lot", "a guidance sign needs the lot it shows")
                )
            if sign.lot is not None and sign.lot not in config.lots:
                problems.append(ConfigProblem(f"{path}.lot", f"no lot {sign.lot!r} in this box"))
            for index, target in enumerate(sign.fallback):
                if target.lot == sign.lot:
                    problems.append(
                        ConfigProblem(
                            f"{path}.fallback.{index}", "a lot cannot be its own fallback"
                        )
                    )
            if not guidance and sign.zone is None and sign.message is None:
                problems.append(
                    ConfigProblem(path, "a warning sign needs a zone or a fixed message")
                )
            if sign.zone is not None:
                if guidance:
                    problems.append(
                        ConfigProblem(f"{path}.zone", "only a warning sign shows a zone")
                    )
                if sign.zone not in config.zones:
                    problems.append(
                        ConfigProblem(f"{path}.zone", f"no zone {sign.zone!r} in this box")
                    )
                if sign.message is not None:
                    problems.append(ConfigProblem(path, "give a zone or a fixed message, not both"))
    return problems


def parse_config(data: dict[str, Any], *, source: str = "<config>") -> EdgeConfig:
    """Validate already-parsed TOML data; raise ConfigError with every problem."""
    return validate_file_data(
        data, model=EdgeConfig, cross_check=cross_check, error=ConfigError, source=source
    )


def load_config(path: Path | str) -> EdgeConfig:
    """Read and validate a box config file."""
    return parse_config(load_file_data(path, error=ConfigError), source=str(path))


config_hash = file_hash  # what the box reports in its birth
