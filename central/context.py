"""What the lifespan builds and every request may use: one ``Central`` per app.

A county (``central serve --county``, site_model/county.py) serves many towns from the one
``Central``: its ``site`` and ``index`` are the county's union, and ``towns`` holds each
town's own (site, index, lots cache). A request under ``/api/v1/towns/{town}/`` gets
``for_town(town)``: the same ``Central`` seen through that town (its site, its lots, its
places), so the routers read ``central.site`` and ``central.lots`` as before. With one town
(``--site``) ``towns`` holds it alone and every path means it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True, kw_only=True)
class Town:
    """What ``Central`` holds per town."""

    id: str
    site: Site
    index: SiteIndex
    lots: LotsCache
    places: frozenset[str]  # every id the town's site file defines (site_model/county.py)


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
    # A county's towns by id (one town for --site); ``town_id`` says which town this view
    # is of (None: the whole county; a single town's Central is its town's view).
    towns: dict[str, Town] = field(default_factory=dict)
    is_county: bool = False
    town_id: str | None = None

    @property
    def places(self) -> frozenset[str] | None:
        """The ids a town-scoped view may show (None: no limit, the whole deployment)."""
        if not self.is_county or self.town_id is None:
            return None
        return self.towns[self.town_id].places

    def for_town(self, town_id: str) -> Central:
        """This ``Central`` seen through one town (KeyError for no such town)."""
        town = self.towns[town_id]
        if not self.is_county:
            return self
        return replace(self, site=town.site, index=town.index, lots=town.lots, town_id=town_id)

    def shows(self, ident: str | None) -> bool:
        """Whether this view may show a thing by its site-file id (a lot, box, camera...)."""
        places = self.places
        return places is None or (ident is not None and ident in places)

    def town_boxes(self) -> frozenset[str] | None:
        """A county town's boxes, for filtering rows by box (None: every row)."""
        return frozenset(self.site.boxes) if self.places is not None else None

    def town_grids(self) -> frozenset[str] | None:
        """A county town's grids, for filtering cases and ledger entries (None: every row)."""
        return frozenset(self.site.grids) if self.places is not None else None

    def town_cameras(self) -> frozenset[str] | None:
        """A county town's cameras, for the pictures they gave (None: every picture)."""
        return frozenset(self.site.cameras) if self.places is not None else None

    def invalidate_lots(self) -> None:
        self.lots.invalidate()
        for town in self.towns.values():
            if town.lots is not self.lots:
                town.lots.invalidate()
