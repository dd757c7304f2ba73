"""The box's status: its birth (who it is, what it runs, its health), published retained at
every connect, every ``status_interval_s`` and when its zone schedule changes; and every
retained state the stages hold, which the uplink sends after the birth."""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator

from pydantic import BaseModel

from edge.clock import read_clock
from edge.pipeline.outlet import Outlet
from edge.pipeline.uplink_states import utc
from firmware_protocols.uplink.models import (
    BoxStatus,
    ClockStatus,
    HealthSummary,
    Online,
    ReleaseReport,
    SiteConfigReport,
)
from firmware_protocols.uplink.topics import Topics


def _package_version() -> str:
    """pyproject.toml's version, from the installed package's metadata (its one place)."""
    try:
        return importlib.metadata.version("parkgrid")
    except importlib.metadata.PackageNotFoundError:  # a checkout never installed
        return "0+unknown"


SOFTWARE_VERSION = f"parkgrid-edge {_package_version()}"

RetainedStates = Callable[[], Iterable[tuple[str, BaseModel]]]


class BoxStatusReporter:
    def __init__(
        self,
        *,
        box_id: str,
        boot_id: uuid.UUID,
        config_digest: str,
        site_config: Callable[[], SiteConfigReport | None] = lambda: None,
        release: Callable[[], ReleaseReport | None] = lambda: None,
        sensor_count: int,
        zone_schedule_version: Callable[[], int | None],
        health: Callable[[], HealthSummary],
        retained: list[RetainedStates],
        outlet: Outlet,
        topics: Topics,
        interval_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._box_id = box_id
        self._boot_id = boot_id
        self._config_digest = config_digest
        self._site_config = site_config
        self._release = release
        self._sensor_count = sensor_count
        self._zone_schedule_version = zone_schedule_version
        self._health = health
        self._retained = retained
        self._outlet = outlet
        self._topics = topics
        self._interval_s = interval_s
        self._clock = clock

    def birth(self) -> BoxStatus:
        clock = read_clock()
        return BoxStatus(
            box_id=self._box_id,
            state=Online.ONLINE,
            boot_id=self._boot_id,
            ts=utc(self._clock()),
            software_version=SOFTWARE_VERSION,
            config_hash=self._config_digest,
            sensor_count=self._sensor_count,
            clock=ClockStatus(synchronised=clock.synchronised, offset_s=None, source=clock.source),
            zone_schedule_version=self._zone_schedule_version(),
            health=self._health(),
            site_config=self._site_config(),
            release=self._release(),
        )

    def states(self) -> Iterator[tuple[str, BaseModel]]:
        """Every retained state of the box (lots, bays, zones, signs), for birth and rebirth."""
        return itertools.chain.from_iterable(states() for states in self._retained)

    def publish(self) -> None:
        self._outlet.publish_state(self._topics.status, self.birth())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self.publish()
