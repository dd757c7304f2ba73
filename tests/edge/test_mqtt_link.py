"""The box's MQTT adapter (``edge.agents.uplink.mqtt_link``) against a real Mosquitto."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from edge.agents.uplink.mqtt_link import LinkSettings, MqttLink, MqttLinkError
from simulators.broker import MosquittoBroker


def settings(broker: MosquittoBroker, **kw: object) -> LinkSettings:
    return LinkSettings(
        host=broker.host,
        port=broker.port,
        client_id="link-test",
        **kw,  # type: ignore[arg-type]
    )


async def test_link_publishes_awaited_and_fast_and_receives(mosquitto: MosquittoBroker) -> None:
    """Awaited and fast publishes reach a subscriber; fast ones leave ``in_flight`` on PUBACK;
    messages on the link's subscriptions reach ``on_message``."""
    got: list[tuple[str, bytes]] = []
    all_in = asyncio.Event()

    def on_message(topic: str, payload: bytes) -> None:
        got.append((topic, payload))
        if len(got) == 201:
            all_in.set()

    async with MqttLink(settings(mosquitto, max_inflight=50), on_message=on_message) as link:
        await link.subscribe(["t/#"])
        await link.publish("t/a", b"awaited", retain=False)
        for i in range(200):
            await link.wait_for_room(49, stopping=lambda: False)
            link.publish_nowait("t/b", str(i).encode(), retain=False)
        async with asyncio.timeout(10):
            await all_in.wait()
            await link.wait_for_room(0, stopping=lambda: False)
        assert link.in_flight == 0
    assert got[0] == ("t/a", b"awaited")
    assert [p for t, p in got if t == "t/b"] == [str(i).encode() for i in range(200)]


async def test_link_refused_login_is_a_clear_error(tmp_path: Path) -> None:
    with MosquittoBroker(workdir=tmp_path / "b", allow_anonymous=False) as broker:
        link = MqttLink(settings(broker), on_message=lambda t, p: None)
        with pytest.raises(MqttLinkError) as refused:
            await link.connect()
    assert refused.value.what == "connack" and refused.value.broker.endswith(str(broker.port))


async def test_link_lost_when_the_broker_stops_answering(mosquitto: MosquittoBroker) -> None:
    """A broker that holds the TCP connection but answers nothing (SIGSTOPped, as behind a
    cut cable) is given up after the keep-alive: ``lost()`` raises."""
    link = MqttLink(settings(mosquitto, keepalive_s=1), on_message=lambda t, p: None)
    await link.connect()
    proc = mosquitto.proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(MqttLinkError) as lost:
            async with asyncio.timeout(30):
                await link.lost()
    finally:
        proc.send_signal(signal.SIGCONT)
        await link.close()
    assert lost.value.what == "connection"


async def test_link_lost_when_the_broker_closes(mosquitto: MosquittoBroker) -> None:
    link = MqttLink(settings(mosquitto), on_message=lambda t, p: None)
    await link.connect()
    mosquitto.kill()
    with pytest.raises(MqttLinkError):
        async with asyncio.timeout(30):
            await link.lost()
    await link.close()
    with pytest.raises(MqttLinkError):
        link.publish_nowait("t", b"x", retain=False)


async def test_a_lost_link_refuses_publishes_and_waits(mosquitto: MosquittoBroker) -> None:
    """Once lost, the link refuses at once, even where paho would queue the message (its
    in-flight window full of unacknowledged ones): a sender must not spin on a dead link."""
    link = MqttLink(
        settings(mosquitto, keepalive_s=1, max_inflight=5), on_message=lambda t, p: None
    )
    await link.connect()
    proc = mosquitto.proc
    assert proc is not None
    proc.send_signal(signal.SIGSTOP)
    try:
        for i in range(10):  # 5 in flight, 5 queued by paho
            link.publish_nowait("t/q", str(i).encode(), retain=False)
        with pytest.raises(MqttLinkError):
            async with asyncio.timeout(30):
                await link.lost()
    finally:
        proc.send_signal(signal.SIGCONT)
    with pytest.raises(MqttLinkError):
        link.publish_nowait("t/q", b"after", retain=False)
    with pytest.raises(MqttLinkError):
        await link.wait_for_room(0, stopping=lambda: False)
    await link.close()


async def test_a_connect_given_up_leaves_no_connection_behind() -> None:
    """A connect cancelled while waiting for a CONNACK that never comes (a server that takes
    TCP and says nothing) closes its socket: the server sees the connection end."""
    accepted = asyncio.Event()
    ended = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        while await reader.read(1024):
            pass  # CONNECT, then nothing until the client goes
        ended.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = MqttLink(
        LinkSettings(host="127.0.0.1", port=port, client_id="given-up"),
        on_message=lambda t, p: None,
    )
    connecting = asyncio.create_task(link.connect())
    try:
        async with asyncio.timeout(10):
            await accepted.wait()
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        async with asyncio.timeout(10):
            await ended.wait()
    finally:
        server.close()
        await server.wait_closed()
