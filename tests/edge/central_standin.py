"""A stand-in for central's ingest, enough to test a box's uplink against a real broker.

It does what the uplink contract asks of central and nothing more: it subscribes to every
box topic of a site, validates each message with ``decode_message``, stores events unique
on (box_id, seq), counts ``events_dropped`` ranges as settled, and publishes per box the
retained ``AckWatermark`` (the highest seq below which it holds every event) in batches,
at most every ``ack_interval_s``, naming the seq line of the box's latest stored event
(``names_lines=False``: a legacy central, whose acks name none). It keeps its own
retained ``_central/status`` (Last Will offline). It runs paho's network thread, so it is
independent of the test's event loop.

The real central can later replace it in the same tests: they use only ``events``,
``log``, ``statuses``, ``watermark()``, ``acking``, ``go_offline()`` / ``go_online()``
and ``send_command()``.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    AckWatermark,
    BoxStatus,
    CentralStatus,
    Command,
    CommandReply,
    Event,
    EventsDropped,
    Topics,
    central_filters,
    central_status_topic,
    decode_message,
    encode_payload,
)
from firmware_protocols.uplink.models import Online


@dataclass(frozen=True, slots=True)
class Logged:
    """One message central received, in arrival order."""

    topic: str
    kind: str
    retained: bool
    payload: Any


@dataclass
class CentralStandin:
    host: str
    port: int
    site: str
    acking: bool = True
    names_lines: bool = True
    ack_interval_s: float = 0.05
    instance: str = "standin"
    events: dict[tuple[str, int], Event] = field(default_factory=dict)
    duplicates: int = 0
    log: list[Logged] = field(default_factory=list)
    replies: list[CommandReply] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    _settled: dict[str, set[int]] = field(default_factory=dict)
    _watermark: dict[str, int] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _published: dict[str, int] = field(default_factory=dict)
    _lines: dict[str, tuple[uuid.UUID, int] | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _client: mqtt.Client | None = None
    _ticker: threading.Thread | None = None

    def start(self) -> CentralStandin:
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"central-{self.instance}-{uuid.uuid4().hex[:6]}",
        )
        client.will_set(
            central_status_topic(self.site), self._status(Online.OFFLINE), qos=1, retain=True
        )
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(0.1, 1)
        client.connect(self.host, self.port, keepalive=10)
        client.loop_start()
        self._client = client
        self._ticker = threading.Thread(target=self._tick, name="standin-acks", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    def __enter__(self) -> CentralStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests look at ---------------------------------------------------------------

    def seqs(self, box_id: str) -> list[int]:
        with self._lock:
            return sorted(seq for (box, seq) in self.events if box == box_id)

    def count(self, box_id: str) -> int:
        """Distinct events stored for ``box_id`` (cheap: for polling)."""
        with self._lock:
            return self._counts.get(box_id, 0)

    def watermark(self, box_id: str) -> int:
        with self._lock:
            return self._watermark.get(box_id, 0)

    def statuses(self, box_id: str) -> list[BoxStatus]:
        with self._lock:
            return [
                m.payload
                for m in self.log
                if isinstance(m.payload, BoxStatus) and m.payload.box_id == box_id
            ]

    def messages(self) -> list[Logged]:
        with self._lock:
            return list(self.log)

    def go_offline(self) -> None:
        self._publish_status(Online.OFFLINE)

    def go_online(self) -> None:
        self._publish_status(Online.ONLINE)

    def send_command(self, box_id: str, command: Command) -> None:
        assert self._client is not None
        topic = Topics(self.site, box_id).cmd(command.name)
        self._client.publish(topic, encode_payload(command), qos=1)

    def send_raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        assert self._client is not None
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    # --- paho side ------------------------------------------------------------------------

    def _status(self, state: Online) -> bytes:
        return encode_payload(
            CentralStatus(state=state, instance=self.instance, ts=dt.datetime.now(dt.UTC))
        )

    def _publish_status(self, state: Online) -> None:
        assert self._client is not None
        self._client.publish(
            central_status_topic(self.site), self._status(state), qos=1, retain=True
        ).wait_for_publish(5)

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        # A broker restarted without persistence forgot the retained acks: publish them again.
        with self._lock:
            self._published.clear()
        client.subscribe([(f, 1) for f in central_filters(self.site)])
        client.publish(
            central_status_topic(self.site), self._status(Online.ONLINE), qos=1, retain=True
        )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        try:
            message = decode_message(msg.topic, msg.payload)
        except DecodeError as exc:
            with self._lock:
                self.bad.append(f"{msg.topic}: {exc}")
            return
        payload = message.payload
        with self._lock:
            self.log.append(
                Logged(
                    topic=msg.topic,
                    kind=message.topic.kind.value,
                    retained=bool(msg.retain),
                    payload=payload,
                )
            )
            if isinstance(payload, CommandReply):
                self.replies.append(payload)
            if not isinstance(payload, Event):
                return
            key = (payload.box_id, payload.seq)
            if key in self.events:
                self.duplicates += 1
                return
            self.events[key] = payload
            if payload.line is not None and payload.line_from is not None:
                self._lines[payload.box_id] = (payload.line, payload.line_from)
            else:
                self._lines[payload.box_id] = None
            self._counts[payload.box_id] = self._counts.get(payload.box_id, 0) + 1
            settled = self._settled.setdefault(payload.box_id, set())
            settled.add(payload.seq)
            if isinstance(payload.body, EventsDropped):
                settled.update(range(payload.body.first_seq, payload.body.last_seq + 1))
            mark = self._watermark.get(payload.box_id, 0)
            while mark + 1 in settled:
                mark += 1
                settled.discard(mark)
            self._watermark[payload.box_id] = mark

    def _tick(self) -> None:
        while not self._stop.wait(self.ack_interval_s):
            if not self.acking or self._client is None:
                continue
            with self._lock:
                due = {
                    box: (mark, self._lines.get(box) if self.names_lines else None)
                    for box, mark in self._watermark.items()
                    if self._published.get(box) != mark
                }
            for box, (mark, line) in due.items():
                ack = AckWatermark(
                    box_id=box,
                    acked_seq=mark,
                    ts=dt.datetime.now(dt.UTC),
                    line=None if line is None else line[0],
                    line_from=None if line is None else line[1],
                )
                self._client.publish(
                    Topics(self.site, box).ack, encode_payload(ack), qos=1, retain=True
                )
                self._published[box] = mark


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` from a thread until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def summary(standin: CentralStandin) -> dict[str, dict[str, Any]]:
    """Per box: events stored, duplicates seen, watermark, and whether its first state
    arrived before its first historical event."""
    result: dict[str, dict[str, Any]] = {}
    first_state: dict[str, int] = {}
    first_historical: dict[str, int] = {}
    for i, message in enumerate(standin.messages()):
        payload = message.payload
        box = message.topic.split("/")[3]
        if message.kind in ("bay", "lot", "zone", "sign"):
            first_state.setdefault(box, i)
        if isinstance(payload, Event) and payload.historical:
            first_historical.setdefault(box, i)
    for box in {b for b, _ in standin.events}:
        result[box] = {
            "count": standin.count(box),
            "watermark": standin.watermark(box),
            "state_before_historical": box in first_state
            and box in first_historical
            and first_state[box] < first_historical[box],
        }
    result["_"] = {"duplicates": standin.duplicates, "bad": len(standin.bad)}
    return result


def main() -> int:
    """Run the stand-in as its own process until stdin closes; then print a JSON summary."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="central stand-in for uplink tests/benches")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--site", required=True)
    args = parser.parse_args()
    standin = CentralStandin(host=args.host, port=args.port, site=args.site).start()
    assert standin._client is not None
    client = standin._client
    wait_until(client.is_connected, timeout=10)
    print("ready", flush=True)
    sys.stdin.read()
    print(json.dumps(summary(standin)), flush=True)
    standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
