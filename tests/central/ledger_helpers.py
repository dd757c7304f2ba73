"""Builders for capture and ledger tests: captures at given minutes, a picture store."""

from __future__ import annotations

import datetime as dt
import uuid

from firmware_protocols.cameras import Capture, CaptureKind, Picture, PictureKind, PlateColor
from firmware_protocols.cameras import VehicleClass as VC

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)  # 16:00 in the site's time zone
JPEG = b"\xff\xd8\xff\xe0evidence\xff\xd9"


def capture(
    seconds: float,
    *,
    plate: str = "苏A8HK52",
    colour: PlateColor | None = PlateColor.BLUE,
    vclass: VC = VC.CAR,
    kind: CaptureKind = CaptureKind.PRESENT,
    picture: bool = True,
    event_id: str | None = None,
    lot_id: str | None = None,
) -> Capture:
    pictures = (
        (Picture(name="plate.jpg", kind=PictureKind.PLATE, data=JPEG + plate.encode()),)
        if picture
        else ()
    )
    return Capture(
        source="parkgrid",
        event_id=event_id or str(uuid.uuid4()),
        captured_at=T0 + dt.timedelta(seconds=seconds),
        plate=plate,
        plate_raw=plate,
        plate_readable=True,
        plate_color=colour,
        vehicle_class=vclass,
        ga_plate_type="02" if colour is PlateColor.BLUE else "01",
        kind=kind,
        lot_id=lot_id,
        pictures=pictures,
    )
