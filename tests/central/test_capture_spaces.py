"""Dahua parking-space events into the store: arrival and departure at the mapped bay."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import Engine, select

from central.captures.service import intake
from central.db import schema as t
from central.evidence.store import DiskPictureStore
from firmware_protocols.cameras import read_dahua
from site_model.site import CameraEntry, CameraKind, Site
from tests.firmware_protocols.camera_corpus import sample


def _space_event(name: str, at: dt.datetime) -> bytes:
    doc = json.loads(sample(name))
    doc["Data"]["RealUTC"] = int(at.timestamp())
    return json.dumps(doc).encode()


def test_parking_space_arrival_and_departure_at_the_mapped_bay(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    camera = CameraEntry(kind=CameraKind.DAHUA, lots=["P2"], spaces={"4": "P2-D"})
    site = site.model_copy(update={"cameras": {**site.cameras, "C7": camera}})
    store = DiskPictureStore(tmp_path / "pictures")
    arrived = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    left = arrived + dt.timedelta(hours=2)
    for name, at in (
        ("dahua-parking-space-parking.json", arrived),
        ("dahua-parking-space-noparking.json", left),
    ):
        (capture,) = read_dahua(_space_event(name, at), "application/json").captures
        result = intake(
            engine, store, site, camera_id="C7", capture=capture, now=at.timestamp() + 5
        )
        assert result["place"] == "lot:P2" and result["held"] is None
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.captures.c.kind, t.captures.c.bay_id, t.captures.c.plate).order_by(
                t.captures.c.captured_at
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("present", "P2-D", "浙A8HK52"),
        ("departure", "P2-D", "浙A8HK52"),
    ]


def test_parking_space_without_a_bay_is_refused(engine: Engine, site: Site, tmp_path: Path) -> None:
    import pytest

    from central.errors import Invalid

    camera = CameraEntry(kind=CameraKind.DAHUA, lots=["P2"], spaces={"1": "P2-A"})
    site = site.model_copy(update={"cameras": {**site.cameras, "C7": camera}})
    at = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    (capture,) = read_dahua(
        _space_event("dahua-parking-space-parking.json", at), "application/json"
    ).captures
    with pytest.raises(Invalid) as caught:
        intake(
            engine,
            DiskPictureStore(tmp_path / "p"),
            site,
            camera_id="C7",
            capture=capture,
            now=at.timestamp(),
        )
    assert "no bay for its parking space '4'" in str(caught.value)
    with engine.connect() as conn:
        assert conn.execute(select(t.captures.c.id)).first() is None
