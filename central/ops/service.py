"""Prometheus text exposition, written by hand (no client library needed for a few gauges)."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text

from central.context import Central
from central.db import schema as t
from central.quarantine.retention import stored_total


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(central: Central) -> str:
    s = central.stats
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value}")

    metric(
        "parkgrid_central_messages_total",
        "counter",
        "MQTT messages decoded, by topic kind",
        [(f'{{kind="{k}"}}', v) for k, v in sorted(s.messages.items())] or [("", 0)],
    )
    metric(
        "parkgrid_central_events_stored_total",
        "counter",
        "Events stored (new)",
        [("", s.events_stored)],
    )
    metric(
        "parkgrid_central_events_duplicate_total",
        "counter",
        "Repeated events dropped",
        [("", s.events_duplicate)],
    )
    metric(
        "parkgrid_central_events_refused_total",
        "counter",
        "Events quarantined for a claim central cannot believe (a dropped range longer than "
        "the box's outbox can hold; a stored seq sent again as another event)",
        [(f'{{reason="{r}"}}', s.events_refused[r]) for r in ("dropped_range", "seq_replayed")],
    )
    metric(
        "parkgrid_central_quarantined_total",
        "counter",
        "Messages quarantined by this process",
        [("", s.quarantined)],
    )
    metric(
        "parkgrid_central_ingest_batches_total", "counter", "Committed batches", [("", s.batches)]
    )
    metric(
        "parkgrid_central_ingest_batch_seconds_total",
        "counter",
        "Time spent processing batches",
        [("", round(s.batch_seconds_total, 6))],
    )
    metric(
        "parkgrid_central_ingest_errors_total", "counter", "Failed batch attempts", [("", s.errors)]
    )
    metric(
        "parkgrid_central_ingest_store_full",
        "gauge",
        "1 while the database's disk is full: events are neither stored nor acked",
        [("", int(s.store_full))],
    )
    metric(
        "parkgrid_central_ingest_store_full_batches_total",
        "counter",
        "Batches refused for a full disk (the boxes keep and resend their events)",
        [("", s.store_full_batches)],
    )
    metric(
        "parkgrid_central_ingest_lag_seconds",
        "gauge",
        "Receipt to commit, oldest message of the last batch",
        [("", round(s.lag_seconds, 6))],
    )
    metric(
        "parkgrid_central_acks_published_total",
        "counter",
        "Ack watermarks published",
        [("", s.acks_published)],
    )
    mqtt = central.mqtt
    metric(
        "parkgrid_central_ingest_queue_depth",
        "gauge",
        "Messages waiting for the writer",
        [("", mqtt.queue_depth() if mqtt else 0)],
    )
    metric(
        "parkgrid_central_mqtt_connected",
        "gauge",
        "1 when connected to the broker",
        [("", 1 if mqtt and mqtt.connected.is_set() else 0)],
    )
    with central.engine.connect() as conn:
        quarantine, quarantine_bytes = stored_total(conn)
        problems = conn.execute(select(func.count()).select_from(t.site_problems)).scalar() or 0
        boxes = conn.execute(
            select(t.boxes.c.box_id, t.boxes.c.online, t.boxes.c.last_seen_at)
        ).all()
    metric(
        "parkgrid_central_quarantine_rows",
        "gauge",
        "Rows in the quarantine table",
        [("", quarantine)],
    )
    metric(
        "parkgrid_central_quarantine_bytes",
        "gauge",
        "Bytes the quarantine stores (payload + topic + reason)",
        [("", quarantine_bytes)],
    )
    metric(
        "parkgrid_central_quarantine_max_bytes",
        "gauge",
        "The quarantine's size cap (QUARANTINE_MAX_BYTES); the oldest rows go past it",
        [("", central.settings.quarantine_max_bytes)],
    )
    metric(
        "parkgrid_central_quarantine_dropped_total",
        "counter",
        "Quarantine rows dropped by retention, oldest first, by reason (size cap, age)",
        [(f'{{reason="{r}"}}', s.quarantine_dropped[r]) for r in ("size", "age")],
    )
    metric(
        "parkgrid_central_site_problems",
        "gauge",
        "Box/site disagreements on record",
        [("", problems)],
    )
    metric(
        "parkgrid_central_box_online",
        "gauge",
        "1 when the box's last status is online",
        [(f'{{box_id="{_escape(b)}"}}', 1 if online else 0) for b, online, _ in boxes],
    )
    metric(
        "parkgrid_central_box_last_seen_timestamp_seconds",
        "gauge",
        "When central last heard from the box (epoch s)",
        [(f'{{box_id="{_escape(b)}"}}', seen) for b, _, seen in boxes if seen is not None],
    )
    metric(
        "parkgrid_central_stream_notices_total",
        "counter",
        "Notices sent to SSE clients",
        [("", central.hub.published)],
    )
    metric(
        "parkgrid_central_uptime_seconds",
        "gauge",
        "Seconds since start",
        [("", round(time.time() - central.started_at, 3))],
    )
    return "\n".join(lines) + "\n"


def database_ok(central: Central) -> bool:
    try:
        with central.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
