"""The floor for central's CPU per event: a bare subscriber inserting the same rows.

A paho MQTT 5 client (central's user, the loopback listener) subscribed to every box's
event topic (not shared: it gets every event the central processes share), decoding each
message with ``json.loads`` and inserting the ``events`` row central would (same columns,
``prev_state`` left empty) into ``floor_events`` (``LIKE events`` with its defaults,
constraints and indexes) with psycopg's ``executemany`` every 50 ms, ``ON CONFLICT DO
NOTHING``. No validation, no watermark, no acks, no rollups, no notices: what storing the
stream costs at the least. Runs in its own process; its CPU is read from ``/proc``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from typing import Any

COLUMNS = ("box_id", "seq", "boot_id", "event_id", "kind", "ts", "received_at", "historical",
           "lot_id", "zone_id", "bay_id", "to_state", "payload")  # fmt: skip
INSERT = (
    f"INSERT INTO floor_events ({', '.join(COLUMNS)}) VALUES "
    f"({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT DO NOTHING"
)


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def row(payload: bytes, received_at: float) -> tuple[Any, ...]:
    doc = json.loads(payload)
    body = doc["body"]
    when = _epoch(body.get("sensor_ts") or doc["ts"])
    return (doc["box_id"], doc["seq"], doc["boot_id"], doc["event_id"], body["kind"], when,
            received_at, doc.get("historical", False), body.get("lot_id"), body.get("zone_id"),
            body.get("bay_id"), body.get("to_state"), payload.decode())  # fmt: skip


def create_table(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE floor_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING INDEXES)"
        )


def floor_worker(dsn: str, port: int, password: str, site_id: str, ctl: Any, out: Any) -> None:
    """Subscribe, store, and answer ``("report",)`` with (events stored, CPU seconds)."""
    import paho.mqtt.client as paho
    import psycopg
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.subscribeoptions import SubscribeOptions

    pending: list[tuple[Any, ...]] = []
    lock = threading.Lock()
    stored = [0]

    def on_message(_c: object, _u: object, msg: Any) -> None:
        with lock:
            pending.append(row(msg.payload, time.time()))

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-floor",
                         protocol=paho.MQTTv5)  # fmt: skip
    client.username_pw_set("central", password)
    client.on_message = on_message
    topic = f"parkgrid/v1/{site_id}/+/event"  # site_id "+": every town of a county
    client.on_connect = lambda c, *_: c.subscribe([(topic, SubscribeOptions(qos=1))])
    client.connect("127.0.0.1", port)
    client.loop_start()
    conn = psycopg.connect(dsn)

    def writer() -> None:
        while True:
            time.sleep(0.05)
            with lock:
                batch = pending[:]
                pending.clear()
            if batch:
                with conn.cursor() as cur:
                    cur.executemany(INSERT, batch)
                conn.commit()
                stored[0] += len(batch)

    threading.Thread(target=writer, daemon=True).start()
    out.put("ready")
    while True:
        cmd = ctl.get()
        if cmd[0] == "report":
            times = os.times()
            out.put((stored[0], times.user + times.system))
        elif cmd[0] == "stop":
            client.loop_stop()
            conn.close()
            return
