"""The FastAPI application: ``create_app(settings)``; the lifespan builds everything.

The lifespan loads the site file, opens the store (migrating it if asked), loads the site
into it, and starts the MQTT ingest. Nothing is built at import, so tests create apps on
SQLite and PostgreSQL side by side.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from central.access_log import QUIET_HEALTH_CHECKS
from central.alerts.drops import DropWatch, DropWatchThread
from central.alerts.router import router as alerts_router
from central.auth.passwords import PasswordChecks, PasswordsBusy
from central.auth.router import router as auth_router
from central.boxes.router import router as boxes_router
from central.captures.router import router as captures_router
from central.cases.router import router as cases_router
from central.cases.service import sync_alert_cases
from central.cases.sweeper import Sweeper
from central.commands.router import router as commands_router
from central.commands.service import SendCommand
from central.context import Central
from central.county.router import router as county_router
from central.dashboard import mount as mount_dashboard
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.errors import (
    CentralError,
    Invalid,
    OutOfTown,
    TooManyAttempts,
    Unauthenticated,
)
from central.fleet.repush import repush_returned
from central.fleet.rollout_engine import RolloutEngine
from central.fleet.rollout_router import router as rollouts_router
from central.fleet.router import router as fleet_router
from central.forecast.router import router as forecast_router
from central.forecast.service import start_forecaster
from central.history.retention import RetentionJob
from central.http_headers import SecurityHeaders, add_api_docs
from central.http_limits import HttpGuard
from central.ingest.service import IngestWriter
from central.leases import (
    ACKS_REPUBLISH,
    DROPS_WATCH,
    FLEET,
    HISTORY_RETENTION,
    JOBS,
    SITE_SYNC,
    Leases,
    exclusive,
)
from central.leases.job import LeasedJob
from central.ledger.router import router as ledger_router
from central.log_redaction import REDACT_SECRETS
from central.lots.router import public as lots_public
from central.lots.router import router as lots_router
from central.lots.service import LotsCache
from central.opendata.router import router as opendata_router
from central.ops.router import router as ops_router
from central.public import mount as mount_public
from central.quarantine.heal import heal_quarantine
from central.quarantine.retention import QuarantineRetention
from central.quarantine.router import router as quarantine_router
from central.releases.router import router as releases_router
from central.settings import CentralSettings
from central.sites.router import router as site_router
from central.sites.service import sync_site
from central.stream.hub import Hub
from central.stream.relay import Relay, channel_for
from central.stream.router import router as stream_router
from central.stream.warden import start_warden
from central.townclock import TownClock
from central.townclock_router import router as clock_router
from central.towns import TownPaths, build_towns
from central.zones.router import router as zones_router
from site_model.county import load_deployment

log = logging.getLogger(__name__)

DESCRIPTION = """\
parkgrid central: live state and history of a town's car parks and stall zones.

The lot figures (`/api/v1/lots`, `/api/v1/ngsi/lots`) are open data and need no login.
Everything else needs a bearer token from `POST /api/v1/auth/login`.
"""


def _start(settings: CentralSettings, loop: asyncio.AbstractEventLoop) -> Central:
    # One town (--site), or a county's towns (--county) in one store: ids are unique across
    # the county, so the store is synced to their union (site_model/county.py).
    county = load_deployment(site_file=settings.site_file, county_file=settings.county_file)
    site = county.merged()
    engine = make_engine(settings.database_url)
    index = county.index()
    # Processes started together migrate and load the site file one after another; a box
    # new in the site file gets the messages it sent before (central.quarantine.heal).
    with exclusive(engine, SITE_SYNC):
        if settings.migrate_on_start:
            upgrade(engine)
        sync_site(engine, site)
        heal_quarantine(
            engine,
            index,
            writer=IngestWriter(engine=engine, site=index, retention=_retention(settings)),
        )
    hub = Hub(
        loop,
        queue_size=settings.stream_queue,
        max_per_token=settings.stream_max_per_token,
        max_clients=settings.stream_max_clients,
        window_s=settings.stream_coalesce_s,
    )
    central = Central(
        settings=settings,
        engine=engine,
        site=site,
        index=index,
        hub=hub,
        lots=LotsCache(engine, max_age_s=settings.lots_cache_s, settings=site.availability),
        started_at=time.time(),
        town=TownClock(settings.town_clock_file),
    )
    build_towns(central, county, lots_cache_s=settings.lots_cache_s)
    if engine.dialect.name == "postgresql" and (settings.ingest_group or not settings.ingest):
        # Several processes: every live stream hears every process's commits.
        _relay_stream(central)
    central.throttle.max_failures = settings.login_max_failures
    central.throttle.backoff_s = settings.login_backoff_s
    central.passwords = PasswordChecks(
        slots=settings.password_check_slots, wait_s=settings.password_check_wait_s
    )
    if settings.ingest:
        from central.ingest.mqtt import CentralMqtt

        def notify(notices: list[dict[str, Any]]) -> None:
            if any(n["type"] in ("lot", "box") for n in notices):
                central.invalidate_lots()
            alerts: dict[str, list[tuple[str, str]]] = {}
            for n in notices:
                if n["type"] in ("alert_raised", "alert_resolved"):
                    town = county.town_of_box(n["box_id"]) or site.id
                    alerts.setdefault(town, []).append((n["box_id"], n["alert_id"]))
            # Cases for alerts that need a person, by the town's [duty]; the sweep catches up
            # on failure.
            for town, keys in alerts.items():
                try:
                    sync_alert_cases(
                        engine,
                        county.towns.get(town, site),
                        keys=keys,
                        town_speed=central.town.speed,
                    )
                except Exception:
                    log.exception("opening cases for alerts failed")
            if hub.relay is None:  # else they went out with the commit (stream.relay)
                hub.publish(notices)

        writer = IngestWriter(
            engine=engine,
            site=index,
            notify=notify,
            stats=central.stats,
            wants_notices=lambda: hub.active or hub.relay is not None,
            retention=_retention(settings),
            shared=bool(settings.ingest_group),
            lease=lambda: central.leases is not None and central.leases.holds(ACKS_REPUBLISH),
            stream_channel=hub.relay.channel if hub.relay is not None else None,
        )
        central.mqtt = CentralMqtt(
            settings=settings,
            site_id=next(iter(county.towns)),
            site_ids=list(county.towns),
            writer=writer,
            writer_process=settings.ingest_writer_process,
        )
        central.mqtt.start()
        central.leases = Leases(
            engine,
            JOBS,
            instance=central.mqtt.instance,
            on_gain=lambda name: _lease_taken(central, name),
        ).start()
        watch = DropWatch(
            engine,
            central.mqtt.broker,
            lambda: dict(central.stats.seq_gaps),
            gap_after_s=settings.seq_gap_alert_s,
            quiet_s=settings.broker_drops_quiet_s,
            notify=notify,
        )
        central.drops = DropWatchThread(
            watch,
            interval_s=settings.drops_check_interval_s,
            holds=lambda: central.leases is not None and central.leases.holds(DROPS_WATCH),
        ).start()
        central.fleet_jobs = _fleet_jobs(central, settings)
    return central


def _fleet_jobs(central: Central, settings: CentralSettings) -> list[LeasedJob]:
    """The staged rollouts' engine and the pushes again to boxes back online, in the process
    holding the fleet lease."""
    mqtt = central.mqtt

    def publish() -> SendCommand | None:
        return mqtt.publish_command if mqtt is not None else None

    engine = RolloutEngine(
        central.engine, central.site, central.index, publish=publish, town_now=central.town.now
    )

    def repush() -> None:
        # A box's desired configuration is its own town's site file's.
        sites = [town.site for town in central.towns.values()]
        repush_returned(central.engine, sites, mqtt_url=settings.box_url, publish=publish())

    def holds() -> bool:
        return central.leases is not None and central.leases.holds(FLEET)

    interval = settings.rollout_step_s
    return [
        LeasedJob("fleet-rollouts", engine.step, interval_s=interval, holds=holds).start(),
        LeasedJob("fleet-repush", repush, interval_s=interval, holds=holds).start(),
    ]


def _retention(settings: CentralSettings) -> QuarantineRetention:
    return QuarantineRetention(
        max_bytes=settings.quarantine_max_bytes,
        max_age_s=settings.quarantine_max_age_days * 86400,
    )


def _relay_stream(central: Central) -> None:
    """Route the live stream through PostgreSQL (``central.stream.relay``)."""

    def arrived(notices: list[dict[str, Any]]) -> None:
        if any(n.get("type") in ("lot", "box") for n in notices):
            central.invalidate_lots()
        central.hub.deliver(notices)

    relay = Relay(
        central.engine,
        channel_for(central.engine, central.site.id),
        deliver=arrived,
        on_gap=central.hub.resync_all,
    ).start()
    if not relay.listening.wait(10):
        log.warning("the live stream relay is not listening yet; it keeps trying")
    central.hub.relay = relay


def _history_retention(central: Central, settings: CentralSettings) -> RetentionJob:
    """The events' partitions ahead and the raw events' cut, in the process holding the
    lease (``central.history.retention``)."""

    def holds() -> bool:
        return central.leases is None or central.leases.holds(HISTORY_RETENTION)

    return RetentionJob(
        central.engine, keep_days=settings.raw_events_keep_days, holds=holds
    ).start()


def _lease_taken(central: Central, name: str) -> None:
    """A job's lease was taken (at start, or from a holder that died): catch up now."""
    if name == ACKS_REPUBLISH and central.mqtt is not None and central.mqtt.connected.is_set():
        central.mqtt.writer.republish_acks()


def _stop(central: Central) -> None:
    for job in central.fleet_jobs:
        job.stop()
    if central.drops is not None:
        central.drops.stop()
    if central.leases is not None:
        central.leases.stop()
    if central.mqtt is not None:
        central.mqtt.stop()
    if central.hub.relay is not None:
        central.hub.relay.stop()
    central.engine.dispose()


def create_app(
    settings: CentralSettings | None = None, *, http_guard: HttpGuard | None = None
) -> FastAPI:
    """The central app; ``settings`` None means: read them from the environment at start.

    ``http_guard``: the server's connection limits (``central serve``), shown in /metrics.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings if settings is not None else CentralSettings()  # type: ignore[call-arg]
        # After uvicorn has set up its loggers: no log line may print a token.
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).addFilter(REDACT_SECRETS)
        logging.getLogger("uvicorn.access").addFilter(QUIET_HEALTH_CHECKS)
        loop = asyncio.get_running_loop()
        central = await run_in_threadpool(_start, resolved, loop)
        central.http_guard = http_guard
        app.state.central = central
        sweeper = Sweeper(central).start() if resolved.ingest else None
        retention = _history_retention(central, resolved) if resolved.ingest else None
        app.state.town_clock = central.town  # the one town clock (central.townclock)
        forecaster = start_forecaster(app, central)
        warden = start_warden(central.hub, central.tokens, central.engine)
        try:
            yield
        finally:
            await run_in_threadpool(forecaster.stop)
            await run_in_threadpool(warden.stop)
            if sweeper is not None:
                await run_in_threadpool(sweeper.stop)
            if retention is not None:
                await run_in_threadpool(retention.stop)
            await run_in_threadpool(_stop, central)

    app = FastAPI(
        title="parkgrid central",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by add_api_docs, with a Content-Security-Policy of its own
        redoc_url=None,
    )
    add_api_docs(app)
    for router in (
        lots_public,
        forecast_router,
        clock_router,
        lots_router,
        zones_router,
        alerts_router,
        boxes_router,
        commands_router,
        fleet_router,
        rollouts_router,
        releases_router,
        quarantine_router,
        site_router,
        auth_router,
        stream_router,
        ops_router,
        captures_router,
        ledger_router,
        cases_router,
        opendata_router,
        county_router,
    ):
        app.include_router(router)
    mount_public(app)  # before the dashboard: it owns /
    mount_dashboard(app)

    @app.exception_handler(CentralError)
    async def central_error(_: Request, exc: CentralError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.detail}
        headers: dict[str, str] = {}
        if isinstance(exc, Invalid):
            body["field"] = exc.field
        if isinstance(exc, OutOfTown):  # which town was asked for, and the actor's own
            body["town"] = exc.town
            body["actor_town"] = exc.actor_town
        if isinstance(exc, TooManyAttempts | PasswordsBusy):
            headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(body, status_code=exc.status, headers=headers)

    limit = settings.max_body_bytes if settings is not None else None
    app.add_middleware(BodyLimit, max_bytes=limit)
    app.add_middleware(TownPaths)  # outside the body limit: it sees the paths routes know
    app.add_middleware(SecurityHeaders)  # added last: outermost, so refusals get it too
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            declare_invalid(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    return app


INVALID_SCHEMA: dict[str, Any] = {
    "title": "Invalid",
    "type": "object",
    "description": "A value central refused after parsing it: the reason and the field.",
    "required": ["detail", "field"],
    "properties": {"detail": {"type": "string"}, "field": {"type": "string"}},
}


def declare_invalid(doc: dict[str, Any]) -> None:
    """Declare both 422 bodies central sends: FastAPI's parse errors and its own ``Invalid``.

    FastAPI documents only the first; a client (and schemathesis) must expect either.
    """
    doc.setdefault("components", {}).setdefault("schemas", {})["Invalid"] = INVALID_SCHEMA
    for operation in (op for item in doc.get("paths", {}).values() for op in item.values()):
        response = (
            operation.get("responses", {}).get("422") if isinstance(operation, dict) else None
        )
        if response is None:
            continue
        response["description"] = "Validation error: a request that does not parse, or a value "
        response["description"] += "refused after parsing (with the field it names)"
        response["content"] = {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/HTTPValidationError"},
                        {"$ref": "#/components/schemas/Invalid"},
                    ]
                }
            }
        }


CAMERA_PATHS = ("/api/v1/captures", "/api/v1/cameras/", "/api/v1/pictures")
CAMERA_MAX_BODY_BYTES = 16 * 1024 * 1024


class BodyLimit:
    """413 for a request body over the limit, by Content-Length or while it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int | None) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if limit is None:
            central = getattr(scope["app"].state, "central", None)
            limit = central.settings.max_body_bytes if central is not None else 1024 * 1024
        if scope.get("path", "").startswith(CAMERA_PATHS):
            limit = max(limit, CAMERA_MAX_BODY_BYTES)  # a capture carries its pictures
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _too_large(send, limit)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, limit)


class _BodyTooLarge(HTTPException):
    """Raised while a body without Content-Length (chunked) streams in past the limit.

    An ``HTTPException`` so FastAPI's body reading passes it on as is: it turns any other
    exception from ``receive`` into "400 There was an error parsing the body".
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body over {limit} bytes")


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body over {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
