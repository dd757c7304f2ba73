"""Migration 0013 (which cameras gave each picture) fills from the stored captures, both
ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import inspect, select

from central.db import schema as t
from central.db.engine import make_engine, writer
from central.db.migrate import _config, current, differences, upgrade


def _downgrade(engine, revision: str) -> None:  # type: ignore[no-untyped-def]
    config = _config()
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _capture(n: int, camera: str, digests: list[str]) -> dict[str, object]:
    pictures = [{"sha256": d, "name": f"{d[:4]}.jpg", "kind": "plate"} for d in digests]
    return {
        "camera_id": camera, "event_id": f"e{n}", "source": "parkgrid", "kind": "plate",
        "captured_at": 1.0, "received_at": 1.0, "plate": "苏A00001", "plate_raw": "苏A00001",
        "plate_readable": True, "vehicle_class": "car", "place": "lot:P1",
        "pictures": json.dumps(pictures),
    }  # fmt: skip


def test_picture_cameras_are_filled_from_the_captures_that_name_them(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        head = current(engine)
        assert head is not None and head >= "0013"
        _downgrade(engine, "0012")
        assert "picture_cameras" not in inspect(engine).get_table_names()
        a, b, c = "a" * 64, "b" * 64, "c" * 64
        with writer(engine).begin() as conn:
            conn.execute(
                t.captures.insert(),
                [_capture(1, "C1", [a, b]), _capture(2, "C1", [a]), _capture(3, "C2", [a]),
                 _capture(4, "C2", [])],
            )  # fmt: skip
            conn.execute(
                t.pictures.insert(),
                [{"sha256": d, "size": 1, "content_type": "image/jpeg", "stored_at": 1.0}
                 for d in (a, b, c)],
            )  # fmt: skip
        upgrade(engine)
        assert current(engine) == head and differences(engine) == []
        with engine.connect() as conn:
            given = set(conn.execute(select(t.picture_cameras)).all())
        # c was uploaded but no capture names it: no camera is recorded for it.
        assert {tuple(r) for r in given} == {(a, "C1"), (b, "C1"), (a, "C2")}
    finally:
        engine.dispose()
