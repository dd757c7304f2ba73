"""Forecasts at central: one background thread refits each lot's model and forecasts.

Every ``refit_s`` it reads each lot's last four weeks from the store (``occupancy_history``,
every 10 minutes) and refits; every ``every_s`` it forecasts from the lots' live figures and
their value 15 minutes ago. Readers (the API, the drivers' page, the feeds) get the last
forecasts from memory and never wait on a fit; the ingest never waits on either (the thread
only reads, on its own connections). A failing refit keeps the last good models and logs once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from central.errors import NotFound
from central.forecast.model import (
    Calendar,
    LotModel,
    Observation,
    TooLittleHistory,
    fit,
    predict,
    prepare,
)
from central.lots.service import list_lots, occupancy_history
from site_model.site import Site

log = logging.getLogger(__name__)
HISTORY_DAYS = 28
HISTORY_STEP_S = 600


class Forecaster:
    def __init__(
        self,
        engine: Engine,
        site: Site,
        *,
        calendar: Calendar,
        clock: Callable[[], float] = time.time,
        refit_s: float = 3600.0,
        every_s: float = 60.0,
        town: Any = None,
    ) -> None:
        self.engine = engine
        self.site = site
        self.calendar = calendar
        self.clock = clock
        self.refit_s = refit_s
        self.every_s = every_s
        self.zone = ZoneInfo(site.site.timezone)
        # The store keeps the boxes' (wall) times; a simulated town's clock maps them.
        self.town = town
        self.models: dict[str, LotModel] = {}
        self.too_little: dict[str, str] = {}
        self._current: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="forecaster", daemon=True)
        self._fitted_at = -float("inf")
        self.rounds = 0

    # readers ---------------------------------------------------------------------------

    def current(self) -> dict[str, dict[str, Any]]:
        """Every lot's last forecast (a copy): what the page and the feeds show."""
        with self._lock:
            return dict(self._current)

    def of(self, lot_id: str) -> dict[str, Any]:
        if lot_id not in self.site.lots:
            raise NotFound("lot", lot_id)
        with self._lock:
            found = self._current.get(lot_id)
        return found or {
            "lot_id": lot_id,
            "status": "not_ready",
            "detail": "the first forecast is being made",
            "made_at": None,
            "points": [],
        }

    # the work --------------------------------------------------------------------------

    def _store(self, town: float) -> dt.datetime:
        wall = self.town.wall(town) if self.town is not None else town
        return dt.datetime.fromtimestamp(wall, dt.UTC)

    def _town(self, stored: dt.datetime) -> dt.datetime:
        wall = stored.timestamp()
        return dt.datetime.fromtimestamp(
            self.town.town(wall) if self.town is not None else wall, self.zone
        )

    @property
    def speed(self) -> float:
        return float(self.town.speed) if self.town is not None else 1.0

    def _observations(self, lot_id: str, now: float) -> list[Observation]:
        history = occupancy_history(
            self.engine,
            lot_id=lot_id,
            start=self._store(now - HISTORY_DAYS * 86400),
            end=self._store(now),
            step_s=max(1, round(HISTORY_STEP_S / self.speed)),
        )
        out: list[Observation] = []
        for point in history.points:
            in_service = history.capacity - point.closed
            if in_service <= 0 or point.unknown > in_service / 2:
                continue  # the box was away or never reported: not a measurement
            out.append(
                Observation(
                    at=self._town(point.at),
                    occupied=point.occupied,
                    capacity=history.capacity,
                )
            )
        return out

    def refit(self) -> None:
        now = self.clock()
        for lot_id in self.site.lots:
            try:
                grid = prepare(self._observations(lot_id, now))
                model = fit(grid, self.calendar)
            except TooLittleHistory as exc:
                self.models.pop(lot_id, None)
                self.too_little[lot_id] = exc.detail
                continue
            self.models[lot_id] = model
            self.too_little.pop(lot_id, None)
        self._fitted_at = now

    def forecast(self) -> None:
        now = self.clock()
        local = dt.datetime.fromtimestamp(now, self.zone)
        made_at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z")
        results: dict[str, dict[str, Any]] = {}
        for lot in list_lots(self.engine):
            result: dict[str, Any] = {"lot_id": lot.id, "made_at": made_at, "points": []}
            model = self.models.get(lot.id)
            if model is None:
                result["status"] = "insufficient_history"
                result["detail"] = self.too_little.get(lot.id, "no history yet")
            elif lot.stale:
                result["status"] = "no_data"
                result["detail"] = "the lot's figures are not live"
            else:
                before = occupancy_history(
                    self.engine,
                    lot_id=lot.id,
                    start=self._store(now - 900),
                    end=self._store(now),
                    step_s=max(60, round(900 / self.speed)),
                ).points[0]
                points = predict(
                    model,
                    local=local.replace(tzinfo=None),
                    occupied=lot.occupied,
                    occupied_15min_ago=before.occupied,
                    capacity=lot.capacity - lot.closed or lot.capacity,
                )
                result["status"] = "ok"
                result["detail"] = f"trained on {model.days} days"
                result["points"] = [
                    {
                        "minutes": p.minutes,
                        "free": p.free,
                        "low": p.low,
                        "high": p.high,
                        "basis": p.basis,
                    }
                    for p in points
                ]
            results[lot.id] = result
        with self._lock:
            self._current = results
        self.rounds += 1

    def run_once(self) -> None:
        # Town seconds; either way, as a simulated town's clock may start behind the wall's.
        if abs(self.clock() - self._fitted_at) >= self.refit_s:
            self.refit()
        self.forecast()

    # the thread ------------------------------------------------------------------------

    def start(self) -> Forecaster:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.run_once()
                if failing:
                    log.info("forecasts work again")
                failing = False
            except Exception:
                if not failing:
                    log.exception("forecasting failed; retrying every %s s", self.every_s)
                failing = True
            self._stop.wait(max(0.05, self.every_s / self.speed))  # town seconds


def start_forecaster(app: Any, central: Any) -> Forecaster:
    """The app's forecaster (``app.state.forecaster``), its thread started unless
    ``forecast_every_s`` is 0. The holiday calendar: ``holidays_file``, else
    ``holidays-cn.toml`` beside the site file if there is one, else none."""
    from central.forecast.calendar import CalendarError, load_calendar

    settings = central.settings
    path = settings.holidays_file
    if path is None:
        beside = settings.deployment_file.parent / "holidays-cn.toml"
        path = beside if beside.is_file() else None
    calendar = Calendar()
    if path is not None:
        try:
            calendar = load_calendar(path)
        except CalendarError as exc:
            log.error("holiday calendar not used: %s", exc)
    town = getattr(app.state, "town_clock", None)
    clock = getattr(app.state, "public_clock", None) or (town.now if town else time.time)
    forecaster = Forecaster(
        central.engine,
        central.site,
        calendar=calendar,
        clock=clock,
        refit_s=settings.forecast_refit_s,
        every_s=settings.forecast_every_s or 60.0,
        town=town,
    )
    app.state.forecaster = forecaster
    if settings.forecast_every_s > 0:
        forecaster.start()
    return forecaster
