"""The box's local health page for a technician's laptop: ``/healthz`` and ``/metrics``.

Served on ``127.0.0.1`` by default (the config's ``health.listen``). It is deliberately a
tiny asyncio HTTP/1.0 responder rather than a web framework: the box must stay small (no
FastAPI or uvicorn on a box), and the two pages are snapshots of counters the agents keep
anyway. The Prometheus text exposition format (version 0.0.4) is simple enough to write
directly; ``prometheus_client``'s global metric objects would duplicate those counters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One metric family: ``samples`` are (labels, value) pairs."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: Sequence[tuple[Mapping[str, str], float]] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render_metrics(metrics: Iterable[Metric]) -> str:
    """The Prometheus text exposition of ``metrics``."""
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {_escape(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.kind}")
        for labels, value in metric.samples:
            if labels:
                text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
                lines.append(f"{metric.name}{{{text}}} {_number(value)}")
            else:
                lines.append(f"{metric.name} {_number(value)}")
    return "\n".join(lines) + "\n"


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
