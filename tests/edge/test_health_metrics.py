"""The box's /metrics page: written by prometheus_client, read back by its parser."""

from __future__ import annotations

import asyncio
import math

from prometheus_client.parser import text_string_to_metric_families

from edge.health_http import HealthReport, HealthServer, Metric


def _metrics() -> list[Metric]:
    return [
        Metric(
            name="parkgrid_edge_acks_refused_total",
            kind="counter",
            help='acks refused ("above the last seq")\nper box',
            samples=[({"box": "box-p1"}, 3)],
        ),
        Metric(
            name="parkgrid_edge_lot_bays",
            kind="gauge",
            help="bays by state",
            samples=[
                ({"box": "box-p1", "lot": "P1", "state": "free"}, 4.0),
                ({"box": 'odd "box"\\\n', "lot": "P2", "state": "unknown"}, math.nan),
            ],
        ),
        Metric(
            name="parkgrid_edge_outbox_oldest_event_age_seconds",
            kind="gauge",
            help="age",
            samples=[({"box": "box-p1"}, 1765000000.25)],
        ),
        Metric(name="parkgrid_edge_sign_up", kind="gauge", help="no signs", samples=[]),
    ]


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return head, body


async def test_health_metrics_page_round_trips_names_types_labels_and_values() -> None:
    """Every family keeps its name, type, help, labels (escaped) and value, as parsed by
    the Prometheus text parser; a family with no samples is still declared."""
    server = HealthServer(
        listen="127.0.0.1:0",
        health=lambda: HealthReport(ok=True, detail={}),
        metrics=_metrics,
    )
    await server.start()
    try:
        head, text = await _get(server.bound_port, "/metrics")
    finally:
        assert server._server is not None
        server._server.close()
    assert head.startswith("HTTP/1.0 200")
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert "# TYPE parkgrid_edge_sign_up gauge" in text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    refused = families["parkgrid_edge_acks_refused"]  # the parser names counters bare
    assert refused.type == "counter"
    assert refused.documentation == 'acks refused ("above the last seq")\nper box'
    assert [(s.name, s.labels, s.value) for s in refused.samples] == [
        ("parkgrid_edge_acks_refused_total", {"box": "box-p1"}, 3.0)
    ]
    bays = families["parkgrid_edge_lot_bays"]
    assert bays.type == "gauge"
    free, odd = bays.samples
    assert (free.labels, free.value) == ({"box": "box-p1", "lot": "P1", "state": "free"}, 4.0)
    assert odd.labels == {"box": 'odd "box"\\\n', "lot": "P2", "state": "unknown"}
    assert math.isnan(odd.value)
    age = families["parkgrid_edge_outbox_oldest_event_age_seconds"].samples[0]
    assert age.value == 1765000000.25
