"""Central's MQTT link: one paho client, its network thread, and the ingest writer.

Theory of operation
-------------------
paho's network thread does nothing but put ``(topic, payload, received_at)`` on a bounded
queue of two lanes, live and a box's replayed backlog (``lanes``: the batcher takes live
first); when it is full the thread blocks, which stops reading the socket, which makes the
broker hold the rest (QoS 1 flow control): back-pressure instead of memory growth. The
batcher thread takes up to ``batch_max`` messages or whatever arrived within
``batch_delay_s`` of the first and hands them on, by default to the writer *process*
(``central.ingest.process``: decode and one transaction there, acks published here when
its answer comes back); with ``writer_process=False`` (or an in-memory SQLite store) the
batcher stores the batch itself. Measured (docs/central.md): paho's thread is ~3x cheaper
per message than aiomqtt's asyncio path, and a writer thread sharing paho's GIL halves
paho's rate; in its own process it does not.

::

    broker ==TCP==> [paho thread] --deque(bounded)--> [batcher] ==pipe==> [writer process]
       ^                                                                   | commit
       +-------- acks (after the commit), central status, commands <-------+

With an ingest group (several processes share the stream) each lane has its own batcher
and writer process: a replaying box's backlog is split over the processes, which take
turns on the box in PostgreSQL, and a live batch must not wait in that queue
(``central.ingest.lanes``). Each writer's marks are then one more sharer's, as another
process's are: they read the store where they wait at a hole. ::

    [paho thread] --live-----> [live batcher] ====> [live writer]    --+
                  --backlog--> [backlog batcher] => [backlog writer] --+--> acks, notices

The broker's ``$SYS`` drop counters (``central.ingest.broker_sys``) are subscribed in every
process too and kept in ``broker`` by paho's thread; they never reach the writer.

Central's own status is published retained ``online`` on every connect and registered as
the Last Will ``offline`` (one town's topic: a county's other towns get ``offline`` before
``online`` on every connect instead). Central is ``connected`` once the broker granted its
subscriptions, not at its CONNACK. Box status topics are subscribed without ``$share`` in every
process (each process sees every birth and death, in order); the rest use
``$share/{group}/...`` when a group is set, so processes split the load.

Central speaks MQTT 5 only when a group is set (``$share`` needs it) and MQTT 3.1.1
otherwise, so it also runs against brokers without MQTT 5, such as the demo's embedded
one (``simulators.embedded_broker``); docs/central.md says what 3.1.1 gives up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from central.ingest.batch import RawMessage
from central.ingest.broker_sys import SYS_TOPICS, BrokerCounters
from central.ingest.lanes import LaneReader, Lanes
from central.ingest.process import WriterProcess
from central.ingest.retries import store_with_retries
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from firmware_protocols.uplink import (
    CentralStatus,
    central_filters,
    central_status_topic,
    encode_payload,
    shared_filter,
)
from firmware_protocols.uplink.models import Online

log = logging.getLogger(__name__)


class Batcher:
    """One batcher thread: what it takes (a lane or both), its wake-up, and its writer
    process (None: it stores the batch itself)."""

    def __init__(
        self, name: str, reader: LaneReader, arrived: threading.Event, process: Any
    ) -> None:
        self.name = name
        self.reader = reader
        self.arrived = arrived
        self.process: WriterProcess | None = process
        self.thread: threading.Thread | None = None


# A survivor says "online" again once other instances' "offline"s were quiet this long.
REASSERT_AFTER_S = 0.5


def status_payload(state: Online, instance: str) -> bytes:
    return encode_payload(CentralStatus(state=state, instance=instance, ts=dt.datetime.now(dt.UTC)))


def subscriptions(site: str | Sequence[str], group: str | None) -> list[str]:
    """The filters central subscribes to, for each of its sites (a county's towns): status
    and the broker's drop counters unshared; the rest shared if grouped."""
    sites = [site] if isinstance(site, str) else sorted(site)
    filters = [f for s in sites for f in central_filters(s)]
    status = [f for f in filters if f.endswith("/status")]
    rest = [f for f in filters if not f.endswith("/status")]
    if group:
        rest = [shared_filter(group, f) for f in rest]
    return [*status, *rest, *(central_status_topic(s) for s in sites), *SYS_TOPICS]


class CentralMqtt:
    """The MQTT side of central: ingest, acks, central status, commands to boxes."""

    def __init__(
        self,
        *,
        settings: CentralSettings,
        site_id: str,
        writer: IngestWriter,
        site_ids: Sequence[str] = (),
        on_connection_change: Callable[[bool], None] | None = None,
        writer_process: bool = True,
    ) -> None:
        self.settings = settings
        self.site_id = site_id
        # A county's towns (each box listens to its own town's central status); the will
        # can name one topic only: ``site_id``'s (docs/scale.md, "A county").
        self.site_ids = tuple(site_ids) or (site_id,)
        self.writer = writer
        self.instance = settings.instance or socket.gethostname().split(".")[0] or "central"
        self.on_connection_change = on_connection_change
        # Two deques (live first, then a replayed backlog) and a condition instead of
        # queue.Queue: about 4 us less per message on the two hot threads, sharing one GIL.
        self._buffer = Lanes()
        self._has_room = threading.Condition()
        self._arrived = threading.Event()
        self._backlog_arrived = self._arrived  # its own with a backlog batcher (below)
        self.connected = threading.Event()
        self.broker = BrokerCounters()  # the broker's $SYS drop counters (broker_sys)
        self._stopping = threading.Event()
        client_id = (
            settings.mqtt_client_id or f"parkgrid-central-{self.instance}-{uuid.uuid4().hex[:8]}"
        )
        self.v5 = bool(settings.ingest_group)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
        )
        if settings.mqtt_username:
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            self.client.username_pw_set(settings.mqtt_username, password)
        self.client.max_inflight_messages_set(settings.mqtt_max_inflight)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.will_set(
            central_status_topic(site_id),
            status_payload(Online.OFFLINE, self.instance),
            qos=1,
            retain=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self._subscription: tuple[int, list[str]] = (-1, [])  # the mid of the last SUBSCRIBE
        # Other instances heard "offline" and not "online" since (``_on_central_status``).
        self._dead_instances: set[str] = set()
        self._reassert_at = 0.0
        self._reassert: threading.Thread | None = None
        self.client.on_message = self._on_message
        writer.publish = self.publish
        writer.on_central_status = self._on_central_status
        # The writer in its own process unless the store lives in this process's memory.
        database = writer.engine.url.database
        in_memory = writer.engine.dialect.name == "sqlite" and database in (None, "", ":memory:")
        results_lock = threading.Lock()  # the writers' answers, applied one at a time
        self.writer_process: WriterProcess | None = (
            WriterProcess(
                writer, sweep_interval_s=settings.ack_sweep_interval_s, results_lock=results_lock
            )
            if writer_process and not in_memory
            else None
        )
        # Shared ingest: the backlog gets its own batcher and writer (module docstring).
        self.backlog_process: WriterProcess | None = None
        if self.writer_process is not None and writer.shared:
            self.backlog_process = WriterProcess(
                writer, sweep_interval_s=settings.ack_sweep_interval_s, results_lock=results_lock
            )
            self._backlog_arrived = threading.Event()
            self._batchers = [
                Batcher("live", LaneReader(self._buffer, "live"), self._arrived,
                        self.writer_process),
                Batcher("backlog", LaneReader(self._buffer, "backlog"), self._backlog_arrived,
                        self.backlog_process),
            ]  # fmt: skip
        else:
            self._batchers = [
                Batcher("both", LaneReader(self._buffer, "both"), self._arrived,
                        self.writer_process),
            ]  # fmt: skip

    # --- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        host, port = self.settings.mqtt_host_port()
        self.client.connect_async(host, port, keepalive=self.settings.mqtt_keepalive_s)
        self.client.loop_start()
        for batcher in self._batchers:
            batcher.thread = threading.Thread(
                target=self._run_batcher,
                args=(batcher,),
                name=f"central-ingest-{batcher.name}",
                daemon=True,
            )
            batcher.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish offline, stop reading, store what was queued, disconnect."""
        if self.connected.is_set():
            for site_id in self.site_ids:
                info = self.client.publish(
                    central_status_topic(site_id),
                    status_payload(Online.OFFLINE, self.instance),
                    qos=1,
                    retain=True,
                )
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=2)
        self.client.unsubscribe(subscriptions(self.site_ids, self.settings.ingest_group))
        self._stopping.set()
        for batcher in self._batchers:
            batcher.arrived.set()
        with self._has_room:
            self._has_room.notify_all()
        for batcher in self._batchers:
            if batcher.thread is not None:
                batcher.thread.join(timeout)
        for batcher in self._batchers:
            if batcher.process is not None:
                batcher.process.stop(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # --- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT connect refused: %s", reason)
            return
        topics = subscriptions(self.site_ids, self.settings.ingest_group)
        if self.v5:
            _, mid = client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in topics])
        else:
            _, mid = client.subscribe([(topic, 1) for topic in topics])
        self._subscription = (mid, topics)
        # The Last Will names one town's topic. The county's other towns never heard of an
        # earlier death: ``offline`` first, so their boxes see offline -> online and resend
        # at once what it never acked, as the will's town does, not at their resend timer.
        offline = status_payload(Online.OFFLINE, self.instance)
        for site_id in self.site_ids:
            if site_id != self.site_id:
                self.publish(central_status_topic(site_id), offline, True)
        # After the SUBSCRIBE on the same connection: the broker grants it first, so a box
        # that sees central online publishes to a central that hears it.
        self.publish_status()

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, codes: list[Any], _props: Any
    ) -> None:
        """Connected (``wait_connected``, ``/healthz``) once the broker granted the filters:
        what a box publishes before that reaches nobody."""
        expected, topics = self._subscription
        if mid != expected:
            return
        refused = [topic for topic, code in zip(topics, codes, strict=False) if code.is_failure]
        if refused:
            log.warning("MQTT: the broker refused central's subscriptions to %s", refused)
        if any(not topic.startswith("$SYS/") for topic in refused):
            # Not hearing the town is not up: /healthz says so, the log above says why.
            log.error("MQTT: central cannot hear its towns; check the broker's ACL for it")
            return
        self.connected.set()
        log.info(
            "MQTT connected; %d of %d filters granted", len(topics) - len(refused), len(topics)
        )
        if self.on_connection_change is not None:
            self.on_connection_change(True)
        # A broker restarted without persistence lost the retained acks: publish them again.
        threading.Thread(target=self._republish_acks, daemon=True).start()

    def _republish_acks(self) -> None:
        try:
            self.writer.republish_acks()
        except Exception:  # the store may be briefly unavailable; the next batch acks anyway
            log.exception("could not republish acks")

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("MQTT disconnected (%s); paho reconnects", reason)
        if self.on_connection_change is not None:
            self.on_connection_change(False)

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic[:5] == "$SYS/":  # the broker's counters, not for the writer
            self.broker.update(msg.topic, msg.payload)
            return
        buffer = self._buffer
        if buffer.append((msg.topic, msg.payload, time.time())):
            if len(buffer.backlog) == 1:
                self._backlog_arrived.set()
        elif len(buffer.live) == 1:
            self._arrived.set()
        if len(buffer) >= self.settings.queue_max:
            # Back-pressure: stop reading the socket until the writer catches up.
            with self._has_room:
                self._has_room.wait_for(
                    lambda: len(buffer) < self.settings.queue_max // 2 or self._stopping.is_set(),
                    timeout=5,
                )

    def queue_depth(self) -> int:
        return len(self._buffer)

    def backlog_depth(self) -> int:
        """Of the queue, the replayed backlog (events sent ``historical``)."""
        return len(self._buffer.backlog)

    @property
    def backlog_total(self) -> int:
        """Messages filed as backlog since the start."""
        return self._buffer.backlog_total

    def _on_central_status(self, status: CentralStatus) -> None:
        """Another instance's status, from any town's topic (the batcher's thread).

        One going away says "offline" (its Last Will: one town's topic only). The first
        time a survivor hears of that death it passes it on, the dead instance's "offline"
        on every town's topic, so every town's boxes see offline -> online and resend at
        once what the dead one held, not at their resend timer; then, once a burst of
        "offline"s (the copies, other survivors' copies, a clean stop's one per town) has
        been quiet for ``REASSERT_AFTER_S``, it says "online" again on every town, so the
        retained status ends online."""
        if status.instance == self.instance or self._stopping.is_set():
            return
        if status.state is Online.ONLINE:
            self._dead_instances.discard(status.instance)
            return
        if status.instance not in self._dead_instances:
            self._dead_instances.add(status.instance)
            offline = encode_payload(status)
            for site_id in self.site_ids:
                self.publish(central_status_topic(site_id), offline, True)
        self._reassert_at = time.monotonic() + REASSERT_AFTER_S
        if self._reassert is None or not self._reassert.is_alive():
            self._reassert = threading.Thread(
                target=self._reassert_online, name="central-status-reassert", daemon=True
            )
            self._reassert.start()

    def _reassert_online(self) -> None:
        """ "online" on every town once no "offline" came for ``REASSERT_AFTER_S``."""
        while (wait := self._reassert_at - time.monotonic()) > 0:
            if self._stopping.wait(wait):
                return
        self.publish_status()

    # --- publishing (any thread) ----------------------------------------------------------

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    def publish_status(self) -> None:
        for site_id in self.site_ids:
            self.publish(
                central_status_topic(site_id), status_payload(Online.ONLINE, self.instance), True
            )

    def publish_command(self, topic: str, payload: bytes, expiry_s: float | None) -> bool:
        props = None
        # MQTT 3.1.1 has no expiry: the box still drops a command past its expires_at.
        if expiry_s is not None and self.v5:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = max(1, int(expiry_s))
        info = self.client.publish(topic, payload, qos=1, retain=False, properties=props)
        return info.rc == paho.MQTT_ERR_SUCCESS

    # --- the batcher thread ---------------------------------------------------------------

    def _run_batcher(self, batcher: Batcher) -> None:
        batch_max = self.settings.batch_max
        delay = self.settings.batch_delay_s
        sweep_every = self.settings.ack_sweep_interval_s
        buffer = batcher.reader
        arrived = batcher.arrived
        next_sweep = time.monotonic() + sweep_every
        while True:
            stopping = self._stopping.is_set()
            if not buffer and not stopping:
                arrived.wait(sweep_every)
                arrived.clear()
                if buffer and len(buffer) < batch_max:
                    # Let a batch gather: bounded latency, fewer commits.
                    time.sleep(delay)
            if buffer:
                batch = buffer.take(batch_max)  # live first (central/ingest/lanes.py)
                with self._has_room:
                    self._has_room.notify_all()
                self._process(batch, batcher.process)
            elif stopping:
                return
            if batcher.process is None and time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + sweep_every
                try:
                    self.writer.sweep()
                except Exception:
                    log.exception("ack sweep failed")

    def _process(self, batch: list[RawMessage], process: WriterProcess | None) -> None:
        writer = self.writer
        live = writer.notify is not None and writer.wants_notices()
        if process is not None:
            process.ship(batch, live)
            return
        writer.finish(store_with_retries(writer, batch, live))
