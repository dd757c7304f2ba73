"""Forecasts at central: refit from the store's history, the API, the page and the feeds.

One app on SQLite, three weeks of generated history (the town model, bulk-written and
marked generated), live lot states from the ingest writer, and the forecaster run by hand
(``forecast_every_s=0``) except where the background thread itself is under test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db import schema as t
from central.lots.generated import (
    GENERATED,
    AlreadyGenerated,
    GeneratedChange,
    write_generated_history,
)
from simulators.history import bay_changes, town_days
from tests.central.helpers import wait_for
from tests.central.test_public_page import NOON, SITE, _feed, running_central

TODAY = dt.datetime.fromtimestamp(NOON, dt.timezone(dt.timedelta(hours=8))).date()


def _history(days: int) -> Iterator[GeneratedChange]:
    first = TODAY - dt.timedelta(days=days)
    for at, bay, occupied in bay_changes(town_days(SITE, first_day=first, days=days, seed=3)):
        yield GeneratedChange(at=at, bay_id=bay, occupied=occupied)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any]]:
    with running_central(tmp_path_factory.mktemp("forecast"), forecast_every_s=0) as (
        client,
        writer,
    ):
        engine = client.app.state.central.engine
        written = write_generated_history(
            engine, SITE, _history(21), until=NOON - 3600, source="tests"
        )
        assert written > 10_000
        client.app.state.forecaster.run_once()
        yield client, writer


def test_generated_history_is_marked_and_never_doubled(app) -> None:
    client, _ = app
    engine = client.app.state.central.engine
    with engine.connect() as conn:
        row = conn.execute(select(t.events).where(t.events.c.box_id == GENERATED).limit(1)).one()
    assert row.historical and row.boot_id == GENERATED and '"generated":true' in row.payload
    with pytest.raises(AlreadyGenerated):
        write_generated_history(engine, SITE, _history(1), until=NOON, source="tests")


def test_forecast_endpoint_gives_three_horizons_with_an_interval(app) -> None:
    client, _ = app
    body = client.get("/api/v1/lots/P1/forecast").json()
    assert body["status"] == "ok", body
    assert [p["minutes"] for p in body["points"]] == [15, 30, 60]
    for point in body["points"]:
        assert 0 <= point["low"] <= point["free"] <= point["high"] <= 180
        assert point["basis"] == "model"
    assert client.get("/api/v1/lots/P4/forecast").json()["status"] == "no_data"  # never reported
    assert client.get("/api/v1/lots/P9/forecast").status_code == 404
    assert "/api/v1/lots/{lot_id}/forecast" in client.get("/openapi.json").json()["paths"]


def test_forecast_on_the_page_and_in_parkapi(app) -> None:
    client, _ = app
    html = client.get("/").text
    card = html[html.index('id="lot-P1"') :]
    card = card[: card.index("</article>")]
    assert "预计空位" in card and "15 分钟后" in card and "60 分钟后" in card
    board = client.get("/api/v1/public/board").json()
    p1 = next(lot for lot in board["lots"] if lot["id"] == "P1")
    assert p1["forecast"]["status"] == "ok"
    items = client.get("/api/v1/parkapi/v3/parking-sites").json()["items"]
    p1 = next(i for i in items if i["uid"] == "xigang-P1")
    assert len(p1["x_parkgrid_forecast"]["points"]) == 3


def test_a_lot_with_too_little_history_says_so(tmp_path: Path) -> None:
    with running_central(tmp_path, forecast_every_s=0) as (client, _):
        engine = client.app.state.central.engine
        write_generated_history(engine, SITE, _history(3), until=NOON - 3600, source="tests")
        client.app.state.forecaster.run_once()
        body = client.get("/api/v1/lots/P1/forecast").json()
        assert body["status"] == "insufficient_history"
        assert body["detail"].endswith("day(s) of history; a forecast needs 7")
        assert body["points"] == []
        card = client.get("/").text.split('id="lot-P1"')[1].split("</article>")[0]
        assert "历史数据不足，暂不预测" in card


def test_the_background_thread_forecasts_and_follows_live_figures(tmp_path: Path) -> None:
    with running_central(tmp_path, forecast_every_s=0.2) as (client, writer):
        forecaster = client.app.state.forecaster
        wait_for(lambda: forecaster.rounds >= 1, timeout=30, what="a first forecast round")
        assert client.get("/api/v1/lots/P1/forecast").json()["status"] == "insufficient_history"
        rounds = forecaster.rounds
        _feed(writer, "P1", free=5)
        wait_for(lambda: forecaster.rounds > rounds + 1, timeout=30, what="more rounds")
    assert not forecaster._thread.is_alive()  # stopped with the app
