"""The one availability rule, asked by central's store and by a neighbour box's guidance
with the same messages: a lot whose box goes silent reads the same at ``/api/v1/lots`` and on
the sign that would send drivers there."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from central.ingest.service import IngestWriter
from central.lots import service as lots
from edge.agents.guidance import pick_fallback, remote_lot_of
from edge.config import FallbackTarget, SignConfig
from firmware_protocols.uplink import LotState, Topics
from site_model.availability import AvailabilitySettings
from site_model.site import SiteIndex
from tests.central.helpers import SITE, birth, death, lot_state, raw

P1 = Topics(SITE, "box-p1")


def _neighbour_offers_p1(state: LotState, box_online: bool | None) -> bool:
    """Whether a full neighbour's sign, P1 its only fallback, sends drivers to P1."""
    sign = SignConfig(
        unit=1, profile="parkgrid-guidance", lot="P2", fallback=[FallbackTarget(lot="P1")]
    )
    remote = {"P1": remote_lot_of(state, box_online)}
    return pick_fallback(sign, remote, network_up=True) is not None


@pytest.mark.parametrize("stale_for_s", [0.0, 300.0])
def test_a_silent_box_reads_the_same_at_central_and_at_the_neighbour(
    engine: Engine, site_index: SiteIndex, stale_for_s: float
) -> None:
    settings = AvailabilitySettings(stale_for_s=stale_for_s)
    writer = IngestWriter(engine=engine, site=site_index, publish=lambda *_: None)
    state = lot_state(free=7, occupied=3)
    writer.process([raw(P1.status, birth("box-p1")), raw(P1.lot("P1"), state)])
    lot = lots.get_lot(engine, "P1", settings)
    assert (lot.availability, lot.free, lot.age_s) == ("online", 7, None)
    assert _neighbour_offers_p1(state, box_online=True)

    writer.process([raw(P1.status, death("box-p1"))])  # the will: box-p1 went silent
    lot = lots.get_lot(engine, "P1", settings)
    assert lot.stale and lot.age_s is not None and lot.age_s >= 0
    if stale_for_s:  # stale with its age: the office and apps see the last figure and its age
        assert (lot.availability, lot.free, lot.status) == ("stale", 7, "spacesAvailable")
    else:  # unknown at once (the default): nobody is sent to a space that may be gone
        assert (lot.availability, lot.free, lot.status) == ("unknown", 0, "unknown")
    # A sign cannot show an age: stale or unknown, the neighbour no longer sends drivers.
    assert not _neighbour_offers_p1(state, box_online=False)
    assert not _neighbour_offers_p1(state, box_online=None)  # never heard

    # Back, but having heard none of its sensors (a restart): unknown at both, not full.
    blind = lot_state(free=0, occupied=0, ts=5)
    writer.process([raw(P1.status, birth("box-p1")), raw(P1.lot("P1"), blind)])
    lot = lots.get_lot(engine, "P1", settings)
    assert (lot.availability, lot.status, lot.free) == ("unknown", "unknown", 0)
    assert not _neighbour_offers_p1(blind, box_online=True)


def test_figures_from_before_a_reconnection_are_not_current(
    engine: Engine, site_index: SiteIndex
) -> None:
    """A box back after a network cut is online at once, but its lot's figures are from
    before the cut until it publishes them again: unknown until then, not shown as current.
    (Measured: P3 read 49 free for 2 s after its network came back, with 14 free.)"""
    writer = IngestWriter(engine=engine, site=site_index, publish=lambda *_: None)
    t0 = 1_000_000.0
    writer.process(
        [
            raw(P1.status, birth("box-p1"), received_at=t0),
            raw(P1.lot("P1"), lot_state(free=7, occupied=3), received_at=t0 + 1),
            raw(P1.status, birth("box-p1"), received_at=t0 + 2),  # the periodic status
        ]
    )
    assert lots.get_lot(engine, "P1").availability == "online"
    writer.process([raw(P1.status, death("box-p1"), received_at=t0 + 3)])
    writer.process([raw(P1.status, birth("box-p1"), received_at=t0 + 40)])  # back
    lot = lots.get_lot(engine, "P1")
    assert (lot.availability, lot.free, lot.status) == ("unknown", 0, "unknown")
    writer.process([raw(P1.lot("P1"), lot_state(free=4, occupied=6, ts=1), received_at=t0 + 41)])
    lot = lots.get_lot(engine, "P1")
    assert (lot.availability, lot.free) == ("online", 4)
