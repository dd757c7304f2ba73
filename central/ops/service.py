"""Central's ``/metrics``: a snapshot of the ingest counters and the store, written by
``prometheus_client`` (a custom collector on a registry of its own, built per scrape)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric as MetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from sqlalchemy import func, select, text

from central.context import Central
from central.db import schema as t
from central.quarantine.retention import stored_total

Samples = list[tuple[dict[str, str], float]]  # (labels, value)


class _Snapshot(Collector):
    """A ``prometheus_client`` collector over families gathered for one scrape."""

    def __init__(self) -> None:
        self.families: list[MetricFamily] = []

    def add(self, name: str, kind: str, help_: str, samples: Samples) -> None:
        # A counter family is named without "_total"; its samples keep the full name.
        family = MetricFamily(
            name.removesuffix("_total") if kind == "counter" else name, help_, kind
        )
        family.samples = [Sample(name, labels, float(value)) for labels, value in samples]
        self.families.append(family)

    def collect(self) -> Iterator[MetricFamily]:
        yield from self.families


def metrics_text(central: Central) -> str:
    s = central.stats
    snapshot = _Snapshot()
    metric = snapshot.add

    metric(
        "parkgrid_central_messages_total",
        "counter",
        "MQTT messages decoded, by topic kind",
        [({"kind": k}, v) for k, v in sorted(s.messages.items())] or [({}, 0)],
    )
    metric(
        "parkgrid_central_events_stored_total",
        "counter",
        "Events stored (new)",
        [({}, s.events_stored)],
    )
    metric(
        "parkgrid_central_events_duplicate_total",
        "counter",
        "Repeated events dropped",
        [({}, s.events_duplicate)],
    )
    metric(
        "parkgrid_central_events_refused_total",
        "counter",
        "Events refused: quarantined for a claim central cannot believe (a dropped range "
        "longer than the box's outbox can hold; a stored seq sent again as another event; "
        "a seq line starting where no box's does), or held back as numbered on a seq line "
        "the box is renumbering (other_line)",
        [
            ({"reason": r}, s.events_refused[r])
            for r in ("dropped_range", "seq_replayed", "line_implausible", "other_line")
        ],
    )
    metric(
        "parkgrid_central_quarantined_total",
        "counter",
        "Messages quarantined by this process",
        [({}, s.quarantined)],
    )
    metric(
        "parkgrid_central_ingest_batches_total", "counter", "Committed batches", [({}, s.batches)]
    )
    metric(
        "parkgrid_central_ingest_batch_seconds_total",
        "counter",
        "Time spent processing batches",
        [({}, round(s.batch_seconds_total, 6))],
    )
    metric(
        "parkgrid_central_ingest_errors_total", "counter", "Failed batch attempts", [({}, s.errors)]
    )
    metric(
        "parkgrid_central_ingest_store_full",
        "gauge",
        "1 while the database's disk is full: events are neither stored nor acked",
        [({}, int(s.store_full))],
    )
    metric(
        "parkgrid_central_ingest_store_full_batches_total",
        "counter",
        "Batches refused for a full disk (the boxes keep and resend their events)",
        [({}, s.store_full_batches)],
    )
    metric(
        "parkgrid_central_ingest_lag_seconds",
        "gauge",
        "Receipt to commit, oldest message of the last batch",
        [({}, round(s.lag_seconds, 6))],
    )
    metric(
        "parkgrid_central_acks_published_total",
        "counter",
        "Ack watermarks published",
        [({}, s.acks_published)],
    )
    mqtt = central.mqtt
    metric(
        "parkgrid_central_ingest_queue_depth",
        "gauge",
        "Messages waiting for the writer",
        [({}, mqtt.queue_depth() if mqtt else 0)],
    )
    metric(
        "parkgrid_central_seq_gap_events",
        "gauge",
        "Per box, seqs missing below the lowest held above its watermark: the hole it waits "
        "at (events lost on the way, or still coming); 0 when none",
        [({"box_id": b}, gap) for b, gap in sorted(s.seq_gaps.items())],
    )
    metric(
        "parkgrid_central_ingest_backlog_depth",
        "gauge",
        "Of the messages waiting, a box's replayed backlog (taken after live ones)",
        [({}, mqtt.backlog_depth() if mqtt else 0)],
    )
    metric(
        "parkgrid_central_ingest_backlog_total",
        "counter",
        "Messages received as a box's replayed backlog (events sent historical)",
        [({}, mqtt.backlog_total if mqtt else 0)],
    )
    broker = mqtt.broker if mqtt else None
    metric(
        "parkgrid_central_broker_dropped_messages_total",
        "counter",
        "Messages the broker dropped for full session queues or inflight limits, as its $SYS "
        "counter reports (summed over broker restarts; all clients, not only central)",
        [({}, broker.dropped_total if broker else 0)],
    )
    metric(
        "parkgrid_central_broker_dropped_per_minute",
        "gauge",
        "The broker's 1-minute moving average of dropped messages ($SYS load/publish/dropped)",
        [({}, broker.dropped_per_min if broker else 0)],
    )
    metric(
        "parkgrid_central_broker_stored_messages",
        "gauge",
        "Messages the broker holds (queued for sessions and retained; $SYS store count)",
        [({}, broker.stored if broker else 0)],
    )
    metric(
        "parkgrid_central_broker_sys_reported",
        "gauge",
        "1 once the broker's $SYS drop counter has arrived (0: not allowed or not published)",
        [({}, 1 if broker and broker.reported else 0)],
    )
    metric(
        "parkgrid_central_mqtt_connected",
        "gauge",
        "1 when connected to the broker",
        [({}, 1 if mqtt and mqtt.connected.is_set() else 0)],
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
        [({}, quarantine)],
    )
    metric(
        "parkgrid_central_quarantine_bytes",
        "gauge",
        "Bytes the quarantine stores (payload + topic + reason)",
        [({}, quarantine_bytes)],
    )
    metric(
        "parkgrid_central_quarantine_max_bytes",
        "gauge",
        "The quarantine's size cap (QUARANTINE_MAX_BYTES); the oldest rows go past it",
        [({}, central.settings.quarantine_max_bytes)],
    )
    metric(
        "parkgrid_central_quarantine_dropped_total",
        "counter",
        "Quarantine rows dropped by retention, oldest first, by reason (size cap, age)",
        [({"reason": r}, s.quarantine_dropped[r]) for r in ("size", "age")],
    )
    metric(
        "parkgrid_central_site_problems",
        "gauge",
        "Box/site disagreements on record",
        [({}, problems)],
    )
    metric(
        "parkgrid_central_box_online",
        "gauge",
        "1 when the box's last status is online",
        [({"box_id": b}, 1 if online else 0) for b, online, _ in boxes],
    )
    metric(
        "parkgrid_central_box_last_seen_timestamp_seconds",
        "gauge",
        "When central last heard from the box (epoch s)",
        [({"box_id": b}, seen) for b, _, seen in boxes if seen is not None],
    )
    metric(
        "parkgrid_central_stream_notices_total",
        "counter",
        "Notices that reached the live stream's hub while a client listened",
        [({}, central.hub.published)],
    )
    metric(
        "parkgrid_central_stream_frames_total",
        "counter",
        "Frames queued to SSE clients (after coalescing and each client's subscription)",
        [({}, central.hub.frames)],
    )
    metric(
        "parkgrid_central_stream_resyncs_total",
        "counter",
        "Resyncs queued to SSE clients (queue overflows, relay gaps)",
        [({}, central.hub.resyncs)],
    )
    metric(
        "parkgrid_central_password_checks_total",
        "counter",
        "argon2 password checks run (logins that reached a check)",
        [({}, central.passwords.checks)],
    )
    metric(
        "parkgrid_central_password_checks_busy_total",
        "counter",
        "Logins refused 503 because every password-check slot stayed taken",
        [({}, central.passwords.busy)],
    )
    metric(
        "parkgrid_central_password_checks_waiting",
        "gauge",
        "Logins waiting for their turn to check a password",
        [({}, central.passwords.waiting)],
    )
    metric(
        "parkgrid_central_login_throttle_keys",
        "gauge",
        "User names and client addresses the login back-off remembers",
        [({}, len(central.throttle))],
    )
    guard = central.http_guard
    if guard is not None:
        metric(
            "parkgrid_central_http_connections",
            "gauge",
            "Open HTTP connections",
            [({}, guard.open_total)],
        )
        metric(
            "parkgrid_central_http_refused_total",
            "counter",
            "HTTP connections refused at accept, by reason",
            [({"reason": k}, v) for k, v in sorted(guard.refused.items())] or [({}, 0)],
        )
        metric(
            "parkgrid_central_http_timeouts_total",
            "counter",
            "HTTP connections closed for a request head or body too slow, by phase",
            [({"phase": k}, v) for k, v in sorted(guard.timed_out.items())] or [({}, 0)],
        )
    metric(
        "parkgrid_central_uptime_seconds",
        "gauge",
        "Seconds since start",
        [({}, round(time.time() - central.started_at, 3))],
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(snapshot)
    return generate_latest(registry).decode()


def database_ok(central: Central) -> bool:
    try:
        with central.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
