"""The uplink agent: the box's one MQTT connection to the broker, and the outbox behind it.

Theory of operation
-------------------
``run()`` is a reconnect loop around one MQTT session (a fresh ``MqttLink`` per
attempt, so the Last Will's ``ts`` is the connect time, as the contract says). Back-off
doubles from 0.5 s up to 30 s, jittered; while waiting, a bare TCP probe of the broker's
address each second ends the wait (back-off reset) when the path answers again after it
did not. The loss is logged once and the return once.

Each session, in this order::

    CONNECT (Will: status offline/connection_lost, retained)
      |-> SUBSCRIBE own ack, own cmd/+, +/lot/+, +/status, _central/status
      |-> PUBLISH status online (birth, retained)      -- awaited
      |-> PUBLISH every state (retained)               -- states() + the outbox state lane
      |-> wait <= ack_wait_s for the retained AckWatermark
      |-> events acked_seq+1 .. (historical=true: they predate this session)
      `-> live events (historical=false) as they are committed

Events go: ``emit()`` -> ``Outbox.append`` (numbered, queued in memory) -> a flush a few
milliseconds later commits the burst in one transaction -> the sender reads committed rows
after its cursor and publishes them at QoS 1. The broker's PUBACK only frees the in-flight
window (``mqtt.max_inflight`` messages, far below paho's 65,535 message ids). An event is
deleted only when central's retained ``AckWatermark`` covers its seq. When the watermark
has not moved for ``outbox.resend_after_s`` while events are outstanding, or when
``_central/status`` turns from offline to online, the cursor goes back to
``acked_seq + 1`` and the oldest ``resend_window_min`` events are published again with
``historical=true`` (the send window, doubled per ack up to ``send_window_max``, caps
what may be outstanding above the watermark); central's store is unique on (box, seq),
so repeats cost bandwidth, never a double count.

Events and states go out with ``MqttLink.publish_nowait`` (one paho ``publish()`` each, no
await; an awaited publish per event capped the drain at a third of paho's rate); the birth,
the shutdown status and command replies with the awaited ``MqttLink.publish``.

Its parts: ``mqtt_link`` (the MQTT adapter), ``connection`` (a connection's settings from
the config), ``commands`` (central's commands, one at a time in their own task, so a slow
``on_command`` never stalls acks), ``ack_rules`` (what an ack means for the outbox's seq
line), ``ack_refusals`` (acks the box does not believe), ``overflow`` (the outbox's
overflow told as events), ``stats`` (the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from pydantic import BaseModel

from edge.agents.network_path import PathWatch
from edge.agents.outbox_commits import Commits
from edge.agents.uplink.ack_refusals import AckRefusals
from edge.agents.uplink.ack_rules import Do, judge, renumber
from edge.agents.uplink.commands import CommandRunner
from edge.agents.uplink.connection import describe, link_settings, only_link_errors
from edge.agents.uplink.mqtt_link import MqttLink, MqttLinkError
from edge.agents.uplink.overflow import OverflowReports
from edge.agents.uplink.stats import UplinkStats, outbox_health
from edge.config import EdgeConfig
from edge.outbox import Outbox
from edge.outbox_errors import SeqLineFull
from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    AckWatermark,
    BoxStatus,
    CentralStatus,
    Command,
    CommandReply,
    LotState,
    Topics,
    decode_message,
    encode_payload,
)
from firmware_protocols.uplink.models import (
    OfflineReason,
    Online,
    OutboxHealth,
)

log = logging.getLogger(__name__)

BACKOFF_MIN_S: Final = 0.5
BACKOFF_MAX_S: Final = 30.0
PAHO_MAX_MIDS: Final = 65_535
GOODBYE_TIMEOUT_S: Final = 1.5


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Uplink:
    """The MQTT uplink of one box. Construct, then ``await run()``; ``await stop()`` ends it."""

    def __init__(
        self,
        *,
        config: EdgeConfig,
        outbox: Outbox,
        boot_id: uuid.UUID,
        birth: Callable[[], BoxStatus],
        states: Callable[[], Iterable[tuple[str, BaseModel]]],
        on_command: Callable[[Command], Awaitable[CommandReply]],
        on_remote_lot: Callable[[str, LotState], None],
        on_remote_box: Callable[[str, bool], None],
        on_connection: Callable[[bool], None],
        clock: Callable[[], dt.datetime] | Callable[[], float] = _utc_now,
        ack_wait_s: float = 1.0,
        flush_delay_s: float = 0.002,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._boot_id = boot_id
        self._birth = birth
        self._states = states
        self._on_remote_lot = on_remote_lot
        self._on_remote_box = on_remote_box
        self._on_connection = on_connection
        self._wall = clock
        self._ack_wait_s = ack_wait_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self.topics = Topics(config.site, config.box_id)
        self._box_id = config.box_id
        self._window = min(config.mqtt.max_inflight, PAHO_MAX_MIDS - 1000)

        self._link: MqttLink | None = None
        self._acked = 0
        self._cursor = 1
        self._historical_below = 1
        self._progress_at = time.monotonic()
        self._central_online: bool | None = None
        self._wake = asyncio.Event()
        self._ack_seen = asyncio.Event()
        self._stop_requested = False
        self._done = asyncio.Event()
        self._running = False
        # Commits and deletes run on their own thread, never on the event loop: an fsync
        # on an SD card takes tens to hundreds of ms (issue 15 finding 7).
        self._commits = Commits(outbox, delay_s=flush_delay_s, on_committed=self._committed)
        self._overflow = OverflowReports(outbox, emit=self.emit, clock=self._clock)
        self._bad_logged: set[str] = set()
        self._commands = CommandRunner(
            topics=self.topics,
            on_command=on_command,
            rebirth=self._publish_birth_and_states,
            bad=self._bad,
            clock=self._clock,
        )

        self._connected = False
        self._live = False
        self._connects = 0
        self._disconnects = 0
        self._events_published = 0
        self._states_published = 0
        self._resends = 0
        self._bad_messages = 0
        self._seq_advances = 0
        self._connect_failures = 0
        self._backoff_s = 0.0
        self._path = PathWatch(
            config.mqtt.host,
            config.mqtt.port,
            url=config.mqtt.url,
            stopping=lambda: self._stop_requested,
            wake=self._wake,
        )
        self._send_window_max = config.outbox.send_window_max
        self._send_window = self._send_window_max
        self._ack_refusals = AckRefusals(
            ack_topic=self.topics.ack, emit=self.emit, bad=self._bad, clock=self._clock
        )

    def _clock(self) -> dt.datetime:
        value = self._wall()
        if isinstance(value, dt.datetime):
            return value
        return dt.datetime.fromtimestamp(value, dt.UTC)

    # --- producer side ------------------------------------------------------------------

    def emit(self, body: BaseModel, ts: dt.datetime | None = None) -> int:
        """Put an event body into the outbox and return its seq; it is published once
        committed (a few milliseconds later, in one transaction with the rest of its burst)."""
        seq = self._outbox.append(body, self._clock() if ts is None else ts, boot_id=self._boot_id)
        self._commits.schedule()
        return seq

    def publish_state(self, topic: str, model: BaseModel) -> None:
        """Latest value wins: publish ``model`` retained at once if connected, and keep it
        (conflated by topic) for the next connection."""
        payload = encode_payload(model)
        link = self._link if self._connected else None
        self._outbox.put_state(topic, payload, dirty=link is None)
        self._commits.schedule()
        if link is not None:
            try:
                link.publish_nowait(topic, payload, retain=True)
                self._states_published += 1
            except MqttLinkError as exc:
                log.debug("state %s kept for the next connection: %s", topic, exc)

    def _committed(self, count: int) -> None:
        """After each commit, on the loop: report overflow; wake the sender for new rows."""
        self._overflow.report()
        if count:
            self._wake.set()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a session up until ``stop()`` or cancellation."""
        self._running = True
        self._stop_requested = False
        self._done.clear()
        attempt = 0
        down_since: float | None = None
        try:
            while not self._stop_requested:
                link = self._make_link()
                try:
                    async with link:
                        attempt = 0
                        self._backoff_s = 0.0
                        if down_since is not None:
                            log.info(
                                "uplink: connection to %s is back after %.1f s",
                                self._config.mqtt.url,
                                time.monotonic() - down_since,
                            )
                        down_since = None
                        await self._guarded_session(link)
                        return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._stop_requested:
                        return
                    if down_since is None:
                        down_since = time.monotonic()
                        log.warning(
                            "uplink: connection to %s lost or refused (%s); retrying",
                            self._config.mqtt.url,
                            describe(exc),
                        )
                    if not only_link_errors(exc):
                        log.exception("uplink: unexpected error in the session")
                finally:
                    self._session_ended()
                attempt += 1
                self._connect_failures += 1
                ceiling = min(self._backoff_max_s, self._backoff_min_s * 2 ** min(attempt - 1, 10))
                # Jitter (half to all of the ceiling) spreads a town's boxes after an outage.
                self._backoff_s = random.uniform(ceiling / 2, ceiling)
                if await self._path.back_off(self._backoff_s):
                    attempt = 0
                    self._backoff_s = 0.0
        finally:
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """Say ``offline shutdown``, disconnect, and let ``run()`` return (within ~2 s)."""
        self._stop_requested = True
        self._wake.set()
        if self._link is not None:
            self._link.wake()
        if self._running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0):
                    await self._done.wait()
        await self._commits.stop()

    def _make_link(self) -> MqttLink:
        will = BoxStatus(
            box_id=self._box_id,
            state=Online.OFFLINE,
            boot_id=self._boot_id,
            ts=self._clock(),
            reason=OfflineReason.CONNECTION_LOST,
        )
        settings = link_settings(
            self._config.mqtt,
            box_id=self._box_id,
            will_topic=self.topics.status,
            will_payload=encode_payload(will),
            max_inflight=self._window,
        )
        return MqttLink(settings, on_message=self._on_message)

    async def _guarded_session(self, link: MqttLink) -> None:
        try:
            await self._session(link)
        except asyncio.CancelledError:
            await self._goodbye(link)
            raise
        await self._goodbye(link)

    async def _goodbye(self, link: MqttLink) -> None:
        status = BoxStatus(
            box_id=self._box_id,
            state=Online.OFFLINE,
            boot_id=self._boot_id,
            ts=self._clock(),
            reason=OfflineReason.SHUTDOWN,
        )
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await link.publish(self.topics.status, encode_payload(status), retain=True)
        except (TimeoutError, MqttLinkError) as exc:
            log.warning("uplink: could not publish the shutdown status: %s", describe(exc))

    def _session_ended(self) -> None:
        was_connected = self._connected
        self._connected = False
        self._live = False
        self._link = None
        if was_connected:
            self._disconnects += 1
            self._safe_call("on_connection", self._on_connection, False)

    async def _session(self, link: MqttLink) -> None:
        # Reset before subscribing: the retained ack and central's status are handled as
        # they are read, which may be before subscribe() returns.
        self._ack_seen.clear()
        self._central_online = None
        # The same filters the broker's ACL grants the box (central.provision.box_acl).
        await link.subscribe(list(self.topics.box_filters()))
        self._link = link
        self._connected = True
        self._connects += 1
        self._safe_call("on_connection", self._on_connection, True)
        async with asyncio.TaskGroup() as tg:
            watch = tg.create_task(link.lost(), name="uplink-link")
            commands = tg.create_task(self._commands.run(link), name="uplink-commands")
            await self._publish_birth_and_states(link)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ack_wait_s):
                    await self._ack_seen.wait()
            # Everything committed before this point is backlog; emitted from now on is live.
            await self._commits.commit_now()
            self._historical_below = self._outbox.last_seq + 1
            self._cursor = self._acked + 1
            self._progress_at = time.monotonic()
            self._live = True
            await self._send_events(link)
            watch.cancel()
            commands.cancel()

    # --- publishing ---------------------------------------------------------------------

    async def _wait_for_room(self, link: MqttLink) -> None:
        await link.wait_for_room(self._window - 1, stopping=lambda: self._stop_requested)

    async def _publish_birth_and_states(self, link: MqttLink) -> None:
        # The birth is this boot's status: it replaces whatever status the outbox kept (the
        # previous boot's periodic one), which must not be replayed over it below.
        status = self._birth()
        if status.line is None:  # the birth names the line its events are on
            status = status.model_copy(update=self._outbox.line.fields())
        birth = encode_payload(status)
        self._outbox.put_state(self.topics.status, birth, dirty=False)
        await link.publish(self.topics.status, birth, retain=True)
        published: set[str] = {self.topics.status}
        for topic, model in self._states():
            payload = encode_payload(model)
            self._outbox.put_state(topic, payload, dirty=False)
            await self._wait_for_room(link)
            link.publish_nowait(topic, payload, retain=True)
            published.add(topic)
            self._states_published += 1
        for topic, payload in self._outbox.states():
            if topic not in published:
                await self._wait_for_room(link)
                link.publish_nowait(topic, payload, retain=True)
                self._states_published += 1
        await self._commits.mark_state_clean()

    async def _send_events(self, link: MqttLink) -> None:
        outbox = self._outbox
        event_topic = self.topics.event
        box_id = self._box_id
        refill_at = max(1, self._window // 2)
        resend_after = self._config.outbox.resend_after_s
        while not self._stop_requested:
            room = self._window - link.in_flight
            if room < refill_at:
                await link.wait_for_room(
                    self._window - refill_at, stopping=lambda: self._stop_requested
                )
                continue
            self._wake.clear()
            self._cursor = max(self._cursor, self._acked + 1)
            # The send window: no event above acked + window goes out until acks come.
            allowed = self._acked + self._send_window - self._cursor + 1
            rows = outbox.pending(self._cursor - 1, min(room, allowed)) if allowed > 0 else []
            if rows:
                if self._cursor == self._acked + 1:
                    self._progress_at = time.monotonic()
                below, line = self._historical_below, outbox.line
                for ev in rows:
                    link.publish_nowait(
                        event_topic,
                        ev.envelope(box_id, historical=ev.seq < below, line=line),
                        retain=False,
                    )
                self._events_published += len(rows)
                self._cursor = rows[-1].seq + 1
                # Let the reader take PUBACKs and acks between batches.
                await asyncio.sleep(0)
                continue
            outstanding = self._cursor > self._acked + 1
            wait = 1.0
            if outstanding:
                due = self._progress_at + resend_after - time.monotonic()
                if due <= 0:
                    self._resend(f"no ack for {resend_after:g} s")
                    continue
                wait = min(wait, due)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _resend(self, reason: str) -> None:
        """Go back to the oldest unacked event with the window shrunk to
        ``resend_window_min`` (TCP-like: a timeout means the far side is not taking what
        it gets), so a connected central that does not ack sees a bounded trickle, oldest
        first, not the whole backlog every ``resend_after_s``; acks widen it again."""
        if self._cursor <= self._acked + 1:
            return
        self._send_window = min(self._config.outbox.resend_window_min, self._send_window_max)
        log.info(
            "uplink: publishing events %d..%d again, at most %d until central acks (%s)",
            self._acked + 1,
            self._cursor - 1,
            self._send_window,
            reason,
        )
        self._historical_below = max(self._historical_below, self._cursor)
        self._cursor = self._acked + 1
        self._progress_at = time.monotonic()
        self._resends += 1
        self._wake.set()

    # --- receiving ----------------------------------------------------------------------

    def _on_message(self, topic: str, data: bytes) -> None:
        """Every message the broker sends, on the loop as it is read (``MqttLink``)."""
        try:
            self._dispatch(topic, data)
        except Exception:
            self._bad_messages += 1
            log.exception("uplink: error while handling a message on %s", topic)

    def _dispatch(self, topic: str, data: bytes) -> None:
        if self.topics.is_cmd(topic):
            self._commands.put(topic, data)
            return
        if not data and topic != self.topics.ack:
            # A cleared retained message (another box removed): nothing to learn.
            return
        try:
            message = decode_message(topic, data)
        except DecodeError as exc:
            self._bad(topic.rsplit("/", 2)[-2] if "/" in topic else topic, topic, str(exc))
            return
        payload = message.payload
        owner = message.topic.box_id
        match payload:
            case AckWatermark() if owner == self._box_id:
                self._on_ack(payload)
            case CentralStatus():
                self._on_central(payload.state is Online.ONLINE)
            case LotState() if owner != self._box_id:
                self._safe_call("on_remote_lot", self._on_remote_lot, owner, payload)
            case BoxStatus() if owner != self._box_id:
                self._safe_call(
                    "on_remote_box", self._on_remote_box, owner, payload.state is Online.ONLINE
                )
            case _:
                pass

    def _on_ack(self, ack: AckWatermark) -> None:
        """Central's watermark, judged against this outbox's seq line (``ack_rules``)."""
        self._ack_seen.set()
        outbox = self._outbox
        if ack.acked_seq > outbox.last_seq and outbox.queued:
            outbox.flush()  # only committed events count (and only they were ever sent)
        verdict = judge(
            ack, line=outbox.line, last_seq=outbox.last_seq, outbox_acked=outbox.acked_seq,
            box_acked=self._acked,
        )  # fmt: skip
        acked, do = verdict.acked, verdict.do
        if do is Do.REGRESSED:
            self._bad("ack-regressed", self.topics.ack, verdict.reason)
        if do in (Do.NOTHING, Do.REGRESSED, Do.REFUSE):
            if do is Do.REFUSE:
                self._ack_refusals.refuse(verdict.reason)
            return
        if do in (Do.ADVANCE, Do.MOVE_LINE):
            try:  # ours above an older line's seqs; what went out goes again at once
                self._historical_below += renumber(outbox, verdict)
            except SeqLineFull as exc:
                self._ack_refusals.refuse(str(exc))
                return
            self._seq_advances += 1
            self._cursor = acked + 1
        if do in (Do.APPLY, Do.ADVANCE):
            self._commits.ack(acked)
            # Each ack that moves doubles the window, up to its maximum (TCP's slow start).
            self._send_window = min(self._send_window_max, self._send_window * 2)
        self._acked = max(self._acked, acked)  # another line's mark: the floor of ours
        self._progress_at = time.monotonic()
        self._wake.set()
        self._ack_refusals.sane(acked)

    def _on_central(self, online: bool) -> None:
        previous, self._central_online = self._central_online, online
        if previous is False and online:
            self._resend("central is back online")

    def _bad(self, kind: str, topic: str, reason: str) -> None:
        self._bad_messages += 1
        if kind not in self._bad_logged:
            self._bad_logged.add(kind)
            log.warning(
                "uplink: ignoring a bad message on %s: %s (further ones of this kind are "
                "only counted)",
                topic,
                reason,
            )

    def _safe_call(self, name: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("uplink: %s callback failed", name)

    # --- figures ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def link(self) -> MqttLink | None:
        """This session's MQTT link (None between sessions)."""
        return self._link

    @property
    def live(self) -> bool:
        """Connected, and birth, states and the wait for the ack are done."""
        return self._live

    @property
    def acked_seq(self) -> int:
        return self._acked

    def outbox_health(self) -> OutboxHealth:
        """The outbox part of the box's health summary (for the birth and /healthz)."""
        return outbox_health(self._outbox, self._clock())

    def stats(self) -> UplinkStats:
        outbox = self._outbox
        return UplinkStats(
            connected=self._connected,
            connects=self._connects,
            disconnects=self._disconnects,
            events_published=self._events_published,
            states_published=self._states_published,
            resends=self._resends,
            acked_seq=self._acked,
            last_seq=outbox.last_seq,
            outbox_depth=outbox.depth(),
            outbox_bytes=outbox.bytes(),
            oldest_event_age_s=outbox.oldest_age(self._clock()),
            dropped_events_total=outbox.dropped_events_total,
            commands_handled=self._commands.handled,
            commands_refused=self._commands.refused,
            commands_repeated=self._commands.repeated,
            bad_messages=self._bad_messages + self._commands.errors,
            seq_advances=self._seq_advances,
            acks_refused=self._ack_refusals.refused,
            connect_failures=self._connect_failures,
            backoff_s=self._backoff_s,
            path_probes=self._path.probes,
            network_returns=self._path.returns,
            send_window=self._send_window,
        )
