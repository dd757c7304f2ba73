"""What the lifespan builds and every request may use: one ``Central`` per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from central.auth.passwords import LoginThrottle, PasswordChecks
from central.auth.service import TokenCache
from central.ingest.batch import IngestStats
from central.settings import CentralSettings
from central.stream.hub import Hub
from central.townclock import TownClock
from site_model.site import Site, SiteIndex

if TYPE_CHECKING:
    from central.alerts.drops import DropWatchThread
    from central.http_limits import HttpGuard
    from central.ingest.mqtt import CentralMqtt
    from central.leases import Leases
    from central.leases.job import LeasedJob
    from central.lots.service import LotsCache


@dataclass(kw_only=True)
class Central:
    settings: CentralSettings
    engine: Engine
    site: Site
    index: SiteIndex
    hub: Hub
    lots: LotsCache
    stats: IngestStats = field(default_factory=IngestStats)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    passwords: PasswordChecks = field(default_factory=PasswordChecks)
    tokens: TokenCache = field(default_factory=TokenCache)
    mqtt: CentralMqtt | None = None
    leases: Leases | None = None  # the jobs that run once among processes (ingest only)
    drops: DropWatchThread | None = None  # alerts for lost messages (ingest only)
    fleet_jobs: list[LeasedJob] = field(default_factory=list)  # rollouts, re-pushes (ingest)
    http_guard: HttpGuard | None = None  # set by `central serve`: its connection limits
    started_at: float = 0.0
    town: TownClock = field(default_factory=lambda: TownClock(None))  # the one town clock
