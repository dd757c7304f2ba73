"""Central's settings: one pydantic-settings class, ``PARKGRID_`` environment prefix.

Built in the lifespan (or by the CLI from its arguments), never at import, so tests create
apps with SQLite or PostgreSQL side by side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def default_pictures_dir(database_url: str) -> Path:
    """``pictures/`` beside a SQLite database file, else ``./parkgrid-pictures``."""
    try:
        url = make_url(database_url)
    except ArgumentError:  # make_engine reports a bad URL; here only the default is at stake
        url = None
    if (
        url is not None
        and url.get_backend_name() == "sqlite"
        and url.database
        and url.database != ":memory:"
    ):
        return Path(url.database).resolve().parent / "pictures"
    return Path("parkgrid-pictures").resolve()


def _pictures_default(data: dict[str, Any]) -> Path:
    return default_pictures_dir(str(data.get("database_url") or "sqlite:///parkgrid-central.db"))


class CentralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARKGRID_", extra="ignore")

    site_file: Path | None = Field(
        default=None, description="The site TOML file (lots, bays, zones, boxes, ...)."
    )
    county_file: Path | None = Field(
        default=None,
        description="A county TOML file naming many towns' site files, served by one central "
        "(site_model/county.py); instead of site_file.",
    )
    database_url: str = Field(
        default="sqlite:///parkgrid-central.db",
        description="sqlite:///path.db (WAL) or postgresql+psycopg://user@host/db",
    )
    migrate_on_start: bool = Field(default=True, description="Run migrations at start-up.")
    pictures_dir: Path = Field(
        default_factory=_pictures_default,
        description="Evidence pictures on disk (default: pictures/ beside a SQLite database, "
        "else ./parkgrid-pictures).",
    )

    releases_dir: Path = Field(
        default_factory=lambda data: _pictures_default(data).parent / "releases",
        description="Release bundles stored by `parkgrid central release add`, served to the "
        "boxes (default: releases/ beside a SQLite database, else ./releases).",
    )

    mqtt_url: str = Field(default="mqtt://127.0.0.1:1883")
    box_mqtt_url: str | None = Field(
        default=None,
        description="The broker as the boxes reach it, in the configuration central pushes "
        "them (docs/fleet.md); default: mqtt_url.",
    )
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str | None = None
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600)
    mqtt_max_inflight: int = Field(default=1000, ge=1, le=65535)
    ingest: bool = Field(default=True, description="Run the MQTT ingest in this process.")
    ingest_group: str | None = Field(
        default=None, description="Share the ingest with other processes ($share/NAME/...)."
    )
    ingest_writer_process: bool = Field(
        default=True,
        description="Decode and store in a separate writer process (the faster path: paho's "
        "network thread keeps a core to itself); false keeps the writer as a thread.",
    )
    instance: str | None = Field(default=None, description="This instance's name (host name).")

    batch_max: int = Field(default=1000, ge=1, le=100_000)
    batch_delay_s: float = Field(default=0.05, gt=0, le=10)
    queue_max: int = Field(default=20_000, ge=10)
    ack_sweep_interval_s: float = Field(default=0.5, gt=0, le=60)
    seq_gap_alert_s: float = Field(
        default=120.0,
        gt=0,
        description="A box's seq gap lasting this long raises an office alert (seq_gap).",
    )
    broker_drops_quiet_s: float = Field(
        default=300.0,
        gt=0,
        description="The broker_drops alert clears after this long without a new drop.",
    )
    drops_check_interval_s: float = Field(default=5.0, gt=0, le=300)
    rollout_step_s: float = Field(
        default=2.0, gt=0, le=300, description="How often the rollout engine moves rollouts on."
    )
    quarantine_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=256 * 1024,
        description="Refused messages kept, in stored bytes; the oldest go first past it.",
    )
    quarantine_max_age_days: float = Field(
        default=30.0, gt=0, description="Refused messages older than this are dropped."
    )
    raw_events_keep_days: float = Field(
        default=0.0,
        ge=0,
        description="Raw events of months that ended more than this many days ago are dropped "
        "(whole partitions on PostgreSQL); the history rollups are kept for good. 0: keep all.",
    )

    token_ttl_s: int = Field(default=12 * 3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_backoff_s: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="The first back-off after login_max_failures attempts; doubles per attempt "
        "up to 5 min.",
    )
    password_check_slots: int = Field(
        default=1,
        ge=1,
        le=16,
        description="argon2 checks run at once (each takes 64 MiB): bounds login memory.",
    )
    password_check_wait_s: float = Field(
        default=10.0, gt=0, le=120, description="A login waits this long for a slot, then 503."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    camera_clock_skew_minutes: float = Field(
        default=10.0,
        gt=0,
        le=525_600,
        description="A capture further than this from its receipt is held for a person "
        "(camera clock); a camera's max_clock_skew_minutes in the site file wins.",
    )
    # HTTP limits against slow and idle clients (central/http_limits.py), for `central serve`.
    http_max_connections: int = Field(
        default=1000, ge=10, description="Open HTTP connections in all; more are refused 503."
    )
    http_max_connections_per_address: int = Field(
        default=100,
        ge=1,
        description="Open HTTP connections from one client address (behind a reverse proxy: "
        "the proxy's own, so raise it or let the proxy limit).",
    )
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="A request head must arrive within this."
    )
    http_body_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="A request body must arrive within this."
    )
    http_keep_alive_s: int = Field(
        default=5, ge=1, le=300, description="An idle connection between requests is closed."
    )
    http_max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, le=1024 * 1024, description="A request head's size cap."
    )
    command_ttl_s: int = Field(default=300, ge=5)
    lots_cache_s: float = Field(default=1.0, ge=0, description="Public lot list cache, seconds.")
    public_rate_per_s: float = Field(
        default=10.0, gt=0, description="Drivers' page: requests per second per client (refill)."
    )
    public_burst: int = Field(default=120, ge=1, description="Drivers' page: burst per client.")
    public_cache_s: int = Field(
        default=2, ge=0, le=300, description="Drivers' page: Cache-Control max-age, seconds."
    )
    forecast_every_s: float = Field(
        default=60.0, ge=0, description="Forecasts: how often, seconds (0: not in the background)."
    )
    forecast_refit_s: float = Field(default=3600.0, gt=0, description="Forecasts: refit, seconds.")
    holidays_file: Path | None = Field(
        default=None, description="Holiday calendar (default: holidays-cn.toml beside the site)."
    )
    town_clock_file: Path | None = Field(
        default=None,
        description="A simulated town's clock (sim_start, wall_start, speed; the demo's state).",
    )
    public_url: str | None = Field(
        default=None, description="The drivers' page as printed in QR codes (default: as asked)."
    )
    stream_queue: int = Field(default=1000, ge=10)
    stream_coalesce_s: float = Field(
        default=0.25,
        ge=0,
        le=10,
        description="Live stream: notices are coalesced to the latest per figure this long.",
    )
    stream_max_per_token: int = Field(
        default=8, ge=1, description="Open live streams one token may hold (429 beyond)."
    )
    stream_max_clients: int = Field(
        default=500, ge=1, description="Open live streams in all (503 beyond)."
    )

    @model_validator(mode="after")
    def _one_deployment_file(self) -> CentralSettings:
        if (self.site_file is None) == (self.county_file is None):
            raise ValueError("give a site file (one town) or a county file (many), not both")
        return self

    @property
    def deployment_file(self) -> Path:
        """The file central serves: the county file, else the site file."""
        path = self.county_file or self.site_file
        assert path is not None  # _one_deployment_file
        return path

    @property
    def box_url(self) -> str:
        """The broker's URL in the boxes' pushed configuration."""
        return self.box_mqtt_url or self.mqtt_url

    @field_validator("mqtt_url", "box_mqtt_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"mqtts?://[^/:\s]+(:\d{1,5})?/?", value):
            raise ValueError(f"{value!r} is not an MQTT URL such as mqtt://broker:1883")
        return value.rstrip("/")

    @field_validator("ingest_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
            raise ValueError("a share group name is letters, digits, '_', '.', '-'")
        return value

    def mqtt_host_port(self) -> tuple[str, int]:
        rest = self.mqtt_url.split("://", 1)[1]
        host, _, port = rest.partition(":")
        return host, int(port) if port else (8883 if self.mqtt_url.startswith("mqtts") else 1883)


def setting_problem(err: Mapping[str, Any]) -> str:
    """One of pydantic's errors as a technician reads it: the setting, then what is wrong (a
    check across settings names none; "Value error, " is pydantic's wording, not ours)."""
    where = ".".join(map(str, err["loc"]))
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
