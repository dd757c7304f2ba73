"""What the lifespan builds and every request may use: one ``Central`` per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from central.auth.service import LoginThrottle, TokenCache
from central.ingest.batch import IngestStats
from central.settings import CentralSettings
from central.site import Site, SiteIndex
from central.stream.hub import Hub

if TYPE_CHECKING:
    from central.ingest.mqtt import CentralMqtt
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
    tokens: TokenCache = field(default_factory=TokenCache)
    mqtt: CentralMqtt | None = None
    started_at: float = 0.0
