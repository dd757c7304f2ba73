"""The box's MQTT adapter: one paho-mqtt client driven by this asyncio loop, public API only.

The box needs one thing from its MQTT library that aiomqtt's public API does not give: a
publish that is *not* awaited. An awaited ``aiomqtt.Client.publish`` costs a future and a
timeout per message and held the outbox drain to about a third of paho's rate (first wave);
the uplink used to reach aiomqtt's private paho client for it (issue 19 finding 4). This
module owns its paho client instead and drives it through paho's documented external-loop
interface (``on_socket_open``/``close``/``register_write``/``unregister_write``, then
``loop_read``, ``loop_write`` and ``loop_misc``), the same interface aiomqtt uses inside:

    connect()  -- paho.connect() on a worker thread (DNS, TCP, TLS handshake block)
       |          socket opened: add_reader(loop_read); a write pending: add_writer(loop_write)
       |-> CONNACK (on_connect)                 -> connected, or MqttLinkError(refused)
       |-> subscribe(filters)                   -> awaits the SUBACK
       |-> publish(topic, payload)              -> awaits the PUBACK (birth, replies, goodbye)
       |-> publish_nowait(topic, payload)       -> no await; counted in ``in_flight`` until its
       |                                           PUBACK (``wait_for_room`` waits on it)
       |-> on_message(topic, payload)           -> the caller's callback, on this loop
       |-> lost()                               -> raises MqttLinkError when the link drops
       `-> close()                              -> DISCONNECT (bounded), socket closed

Every paho callback runs on the event loop's thread (``loop_read``/``loop_write`` are
called from it) except ``on_socket_open`` and the first ``register_write``, which paho calls
from the connect thread; those hop to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0
"""From the start of the TCP connect to the CONNACK."""
KEEPALIVE_TICK_S: Final = 1.0
"""How often paho's ``loop_misc`` runs (PINGREQ when due, keepalive timeout)."""


class MqttLinkError(Exception):
    """The MQTT link could not be opened, was refused, or dropped.

    ``what`` says which step failed (``connect``, ``connack``, ``subscribe``, ``publish``,
    ``connection``), ``broker`` is ``host:port``, ``rc`` paho's error or reason code if any."""

    def __init__(self, what: str, broker: str, detail: str, *, rc: int | None = None) -> None:
        super().__init__(f"MQTT {what} at {broker}: {detail}")
        self.what = what
        self.broker = broker
        self.detail = detail
        self.rc = rc


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSettings:
    """What one connection needs (the box builds it from its ``[mqtt]`` config)."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 60
    tls_context: ssl.SSLContext | None = None
    will_topic: str | None = None
    will_payload: bytes = b""
    max_inflight: int = 20


class MqttLink:
    """One MQTT 3.1.1 clean session on the running loop. ``async with MqttLink(...)``
    connects (CONNACK received) and closes; a new link is made for each connection."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        on_message: Callable[[str, bytes], None],
        room_at: int | None = None,
    ) -> None:
        self._settings = settings
        self.broker = f"{settings.host}:{settings.port}"
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._room_at = settings.max_inflight // 2 if room_at is None else room_at
        self._connack: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._closing = False
        self._abandoned = False
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._subacks: dict[int, asyncio.Future[list[Any]]] = {}
        self._unacked: set[int] = set()
        self._room = asyncio.Event()
        self._room.set()
        self._misc: asyncio.Task[None] | None = None

        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv311,
            clean_session=True,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(settings.max_inflight)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls_context is not None:
            client.tls_set_context(settings.tls_context)
        if settings.will_topic is not None:
            client.will_set(settings.will_topic, settings.will_payload, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_paho_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._client = client

    # --- opening and closing ----------------------------------------------------------

    async def __aenter__(self) -> MqttLink:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the TCP (and TLS) connection and wait for the broker's CONNACK."""
        s = self._settings
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.to_thread(self._client.connect, s.host, s.port, s.keepalive_s)
                await asyncio.shield(self._connack)
        except BaseException as exc:
            # Given up (timed out, refused, cancelled): a connect thread still running must
            # not leave a live connection behind, so its socket is closed when it shows up.
            self._abandoned = True
            self._drop_socket()
            if isinstance(exc, TimeoutError):
                raise MqttLinkError("connack", self.broker, "no answer in time") from None
            if isinstance(exc, OSError | ValueError):
                detail = f"{type(exc).__name__}: {exc}"
                raise MqttLinkError("connect", self.broker, detail) from exc
            raise
        self._misc = self._loop.create_task(self._keepalive(), name="mqtt-keepalive")

    async def close(self, timeout_s: float = 1.5) -> None:
        """Send DISCONNECT (no will) and wait up to ``timeout_s`` for it to go out; then the
        socket is closed whatever happened."""
        self._closing = True
        if self._misc is not None:
            self._misc.cancel()
        if not self._lost.done() and self._client.disconnect() == paho.MQTT_ERR_SUCCESS:
            with contextlib.suppress(TimeoutError, MqttLinkError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._lost)
        self._drop_socket()
        self._fail_waiters(MqttLinkError("connection", self.broker, "closed"))

    async def lost(self) -> None:
        """Return only by raising ``MqttLinkError`` once the connection has dropped."""
        await asyncio.shield(self._lost)
        raise self._gone_error()

    def _gone_error(self) -> MqttLinkError:
        """Why the link is gone: the error it was lost with, or ``closed`` (by ``close()``)."""
        error = self._lost.exception() if self._lost.done() else None
        if isinstance(error, MqttLinkError):
            return MqttLinkError(error.what, error.broker, error.detail, rc=error.rc)
        return MqttLinkError("connection", self.broker, "closed")

    def socket(self) -> Any:
        """The connection's socket (paho's ``Client.socket()``), None when closed."""
        return self._client.socket()

    # --- subscribing and publishing ---------------------------------------------------

    async def subscribe(self, filters: list[str], qos: int = 1) -> None:
        """Subscribe to every filter and wait for the SUBACK; a refused filter raises."""
        rc, mid = self._client.subscribe([(f, qos) for f in filters])
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            raise MqttLinkError("subscribe", self.broker, paho.error_string(rc), rc=rc)
        done: asyncio.Future[list[Any]] = self._loop.create_future()
        self._subacks[mid] = done
        codes = await self._bounded(done, "subscribe")
        refused = [f for f, code in zip(filters, codes, strict=False) if code.is_failure]
        if refused:
            raise MqttLinkError("subscribe", self.broker, f"refused: {', '.join(refused)}")

    async def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        self._check(info, topic)
        if info.is_published():
            return
        done: asyncio.Future[None] = self._loop.create_future()
        self._acks[info.mid] = done
        await self._bounded(done, "publish")

    def publish_nowait(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Hand a QoS 1 message to paho and return at once (the fast path): it counts in
        ``in_flight`` until its PUBACK. Raises ``MqttLinkError`` if paho refuses it or the
        link is lost (paho itself would queue it while its in-flight window is full)."""
        if self._lost.done():
            raise self._gone_error()
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        self._check(info, topic)
        if not info.is_published():
            self._unacked.add(info.mid)
            if len(self._unacked) > self._room_at:
                self._room.clear()

    @property
    def in_flight(self) -> int:
        """Messages from ``publish_nowait`` not yet acknowledged by the broker."""
        return len(self._unacked)

    async def wait_for_room(self, max_in_flight: int, *, stopping: Callable[[], bool]) -> None:
        """Wait until at most ``max_in_flight`` fast messages are in flight or ``stopping()``
        is true (checked each second and on ``wake()``); raises ``MqttLinkError`` once the
        link is lost, so a sender never spins on a dead link."""
        while len(self._unacked) > max_in_flight and not stopping():
            if self._lost.done():
                raise self._gone_error()
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._room.wait()
        if self._lost.done():
            raise self._gone_error()

    def wake(self) -> None:
        """End the current ``wait_for_room`` wait early (its caller is stopping)."""
        self._room.set()

    def _check(self, info: paho.MQTTMessageInfo, topic: str) -> None:
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise MqttLinkError(
                "publish", self.broker, f"{topic}: {paho.error_string(info.rc)}", rc=info.rc
            )

    async def _bounded(self, done: asyncio.Future[Any], what: str) -> Any:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                return await done
        except TimeoutError:
            raise MqttLinkError(what, self.broker, "no acknowledgement in time") from None

    # --- paho's callbacks (on this loop's thread unless said otherwise) -----------------

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if self._connack.done():
            return
        if reason.is_failure:
            self._connack.set_exception(
                MqttLinkError("connack", self.broker, f"refused: {reason}", rc=reason.value)
            )
        else:
            self._connack.set_result(None)

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._connection_gone(f"lost: {reason}", rc=reason.value)

    def _on_publish(self, _c: Any, _u: Any, mid: int, _reason: Any, _props: Any) -> None:
        unacked = self._unacked
        if mid in unacked:
            unacked.discard(mid)
            if len(unacked) <= self._room_at:
                self._room.set()
            return
        done = self._acks.pop(mid, None)
        if done is not None and not done.done():
            done.set_result(None)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[Any], _props: Any) -> None:
        done = self._subacks.pop(mid, None)
        if done is not None and not done.done():
            done.set_result(codes)

    def _on_paho_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            self._on_message(message.topic, bytes(message.payload))
        except Exception:  # never into paho: it would end the read and drop the link
            log.exception("MQTT: the message handler failed on %r", message.topic)

    def _on_socket_open(self, _c: Any, _u: Any, sock: Any) -> None:
        # Called from the connect thread.
        self._loop.call_soon_threadsafe(self._watch_reads, sock.fileno())

    def _watch_reads(self, fd: int) -> None:
        if self._abandoned:
            self._drop_socket()
            return
        if self._client.socket() is None:
            return  # closed again before the loop got here
        self._loop.add_reader(fd, self._readable)

    def _on_socket_close(self, _c: Any, _u: Any, sock: Any) -> None:
        if self._loop.is_closed():
            return  # paho's __del__ closing a link left behind by a finished loop
        fd = sock.fileno()
        if threading.get_ident() == self._loop_thread:
            if fd >= 0:
                self._loop.remove_reader(fd)
                self._loop.remove_writer(fd)
            # Later, so that paho's on_disconnect (called next, with the reason) comes first.
            self._loop.call_soon(self._connection_gone, "socket closed")
        else:
            self._loop.call_soon_threadsafe(self._connection_gone, "socket closed")

    def _on_register_write(self, _c: Any, _u: Any, sock: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            self._loop.add_writer(sock.fileno(), self._writable)
        else:  # the CONNECT packet, queued from the connect thread
            self._loop.call_soon_threadsafe(self._watch_writes, sock.fileno())

    def _watch_writes(self, fd: int) -> None:
        # Unconditionally: paho will not ask again until a loop_write has run.
        if self._client.socket() is not None and not self._abandoned:
            self._loop.add_writer(fd, self._writable)

    def _on_unregister_write(self, _c: Any, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._loop.remove_writer(fd)

    def _readable(self) -> None:
        try:
            self._client.loop_read()
            sock = self._client.socket()
            # An SSL socket may hold decoded bytes the selector cannot see (paho #131).
            while isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
                self._client.loop_read()
                sock = self._client.socket()
        except Exception as exc:
            self._connection_gone(f"{type(exc).__name__}: {exc}")

    def _writable(self) -> None:
        try:
            self._client.loop_write()
        except Exception as exc:
            self._connection_gone(f"{type(exc).__name__}: {exc}")

    async def _keepalive(self) -> None:
        while self._client.loop_misc() == paho.MQTT_ERR_SUCCESS:  # noqa: ASYNC110 - a tick
            await asyncio.sleep(KEEPALIVE_TICK_S)

    # --- the end ----------------------------------------------------------------------

    def _connection_gone(self, detail: str, *, rc: int | None = None) -> None:
        error = MqttLinkError("connection", self.broker, detail, rc=rc)
        if not self._lost.done():
            if self._closing:
                self._lost.set_result(None)
            else:
                self._lost.set_exception(error)
        if not self._connack.done():
            self._connack.set_exception(MqttLinkError("connack", self.broker, detail, rc=rc))
        self._fail_waiters(error)

    def _fail_waiters(self, error: MqttLinkError) -> None:
        pending: list[asyncio.Future[Any]] = [*self._acks.values(), *self._subacks.values()]
        for waiter in pending:
            if not waiter.done():
                waiter.set_exception(error)
        self._acks.clear()
        self._subacks.clear()
        self._unacked.clear()
        self._room.set()
        # Retrieved here so asyncio does not log a never-retrieved exception.
        for fut in (self._lost, self._connack):
            if fut.done() and not fut.cancelled():
                fut.exception()

    def _drop_socket(self) -> None:
        """Close the socket without DISCONNECT (after a failed open or a close that timed
        out); paho's own close runs ``on_socket_close``."""
        sock = self._client.socket()
        if sock is None:
            return
        fd = sock.fileno()
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        with contextlib.suppress(OSError):
            sock.close()
