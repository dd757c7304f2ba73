"""The box's local health page for a technician's laptop: ``/healthz`` and ``/metrics``.

Served on ``127.0.0.1`` by default (the config's ``health.listen``). It is deliberately a
tiny asyncio HTTP/1.0 responder rather than a web framework: the box must stay small (no
FastAPI or uvicorn on a box), and the two pages are snapshots of counters the agents keep
anyway. ``/metrics`` is written by ``prometheus_client`` from a snapshot of those counters
(a custom collector on a registry of its own, built per scrape): no global metric objects
duplicate what the agents already count.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric as MetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One metric family: ``samples`` are (labels, value) pairs."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: Sequence[tuple[Mapping[str, str], float]] = field(default_factory=list)


class _Snapshot(Collector):
    """A ``prometheus_client`` collector that yields one snapshot of ``Metric`` families."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterator[MetricFamily]:
        for metric in self._metrics:
            # A counter family is named without "_total"; its samples keep the full name.
            family_name = metric.name
            if metric.kind == "counter":
                family_name = family_name.removesuffix("_total")
            family = MetricFamily(family_name, metric.help, metric.kind)
            family.samples = [
                Sample(metric.name, {key: str(val) for key, val in labels.items()}, float(value))
                for labels, value in metric.samples
            ]
            yield family


def render_metrics(metrics: Iterable[Metric]) -> str:
    """The Prometheus text exposition (0.0.4) of ``metrics``, written by prometheus_client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metrics))
    return generate_latest(registry).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthReport:
    ok: bool
    detail: dict[str, object]


class HealthServer:
    """Answers GET /healthz (JSON, 200 or 503) and GET /metrics (Prometheus text)."""

    def __init__(
        self,
        *,
        listen: str,
        health: Callable[[], HealthReport],
        metrics: Callable[[], Iterable[Metric]],
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self._health = health
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def run(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, path, *_ = [*request_line.split(" "), "", ""]
            status, content_type, body = self._route(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        except Exception:  # a broken snapshot must not take the page (or the box) down
            log.exception("health page failed")
            status, content_type, body = 500, "text/plain", b"internal error\n"
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }[status]
        header = (
            f"HTTP/1.0 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            writer.write(header.encode("latin-1") + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _route(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method != "GET":
            return 405, "text/plain", b"only GET\n"
        path = path.split("?", 1)[0]
        if path == "/healthz":
            report = self._health()
            body = json.dumps({"ok": report.ok, **report.detail}, default=str, indent=1)
            return (200 if report.ok else 503), "application/json", body.encode() + b"\n"
        if path == "/metrics":
            text = render_metrics(self._metrics())
            return 200, "text/plain; version=0.0.4; charset=utf-8", text.encode()
        return 404, "text/plain", b"not found: try /healthz or /metrics\n"
