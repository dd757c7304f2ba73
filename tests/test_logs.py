"""The long-running commands' JSON log lines carry the town's time while a town clock runs."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from parkgrid.logs import configure

TOWN_START = dt.datetime(2026, 6, 3, 10, 20, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.StringIO, pytest.MonkeyPatch]]:
    """A JSON-lines log into a buffer; the root logger as it was afterwards."""
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    yield io.StringIO(), monkeypatch
    root.handlers[:] = kept[0]
    root.setLevel(kept[1])


def _records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_demo_towns_time_is_a_field_of_every_line(
    logged: tuple[io.StringIO, pytest.MonkeyPatch], tmp_path: Path
) -> None:
    out, env = logged
    clock = tmp_path / "demo.json"
    clock.write_text(json.dumps({"phase": "starting"}))  # the demo before the town starts
    env.setenv("PARKGRID_TOWN_CLOCK_FILE", str(clock))  # as the demo hands it to its children
    configure("INFO", stream=out)
    logging.getLogger("edge.runtime").info("before the town starts")
    wall_start = time.time()
    clock.write_text(
        json.dumps({"sim_start": TOWN_START.timestamp(), "wall_start": wall_start, "speed": 60})
    )
    logging.getLogger("edge.runtime").info("the town runs")
    before, running = _records(out)
    assert "town_time" not in before  # no town clock yet: no town time to give
    town = dt.datetime.fromisoformat(str(running["town_time"]))
    wall = dt.datetime.fromisoformat(str(running["time"]))
    assert town.utcoffset() == dt.timedelta(0)  # UTC, like "time"
    expected = TOWN_START.timestamp() + (wall.timestamp() - wall_start) * 60
    assert abs(town.timestamp() - expected) < 0.5
    assert abs(town.timestamp() - wall.timestamp()) > 86400  # the town's day, not today


def test_without_a_town_clock_the_lines_have_wall_time_only(
    logged: tuple[io.StringIO, pytest.MonkeyPatch],
) -> None:
    out, env = logged
    env.delenv("PARKGRID_TOWN_CLOCK_FILE", raising=False)
    configure("INFO", stream=out)
    logging.getLogger("central").warning("a real town")
    (record,) = _records(out)
    assert "town_time" not in record and record["message"] == "a real town"
