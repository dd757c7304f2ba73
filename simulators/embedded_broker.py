"""A pure-Python MQTT broker (amqtt) on a free loopback port: the demo's fallback broker.

``parkgrid demo`` uses mosquitto when the machine has it; without it, this broker keeps the
demo to nothing outside the Python install. It has the same shape as
``simulators.broker.MosquittoBroker`` (``start()``/``stop()``, ``url``, ``port``, a context
manager) and runs amqtt in a child process (``python -m simulators.embedded_broker``), so it
does not share a GIL with the demo's simulators and can be stopped like any other child.

Theory of operation
-------------------
The child builds its amqtt configuration from its arguments: one TCP listener on
``host:port``, anonymous clients allowed, none of amqtt's packet or ``$SYS`` plugins (they
cost per message). It serves until SIGTERM or SIGINT, then shuts amqtt down, which closes
every client (their Last Wills are published, as after a crash).

::

    parent (MosquittoBroker-shaped)          child: python -m simulators.embedded_broker
      start() --Popen(host, port)-->  amqtt Broker -- listener host:port <== MQTT 3.1.1 clients
      wait_for_port(host, port)
      stop()  --SIGTERM-->            broker.shutdown(), exit 0

One amqtt defect is corrected here (``_OwnRetainedBroker``): on every CONNECT amqtt 0.12.1
sends the new client the retained messages matching *any* client's subscription, so a box
connecting would get every other box's retained status, state and ack on topics it never
subscribed to. Retained messages go only to a client holding a matching subscription.

Limits (amqtt 0.12): MQTT 3.1.1 only (an MQTT 5 CONNECT gets no answer, so no ``$share``),
no persistence, and about 2,000 QoS 1 messages a second from one publisher on our machine:
enough for the demo, not a production broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Any

from simulators.broker import BrokerProcess


def broker_config(host: str, port: int, *, allow_anonymous: bool = True) -> dict[str, Any]:
    """amqtt's configuration for one loopback listener (the child builds it from this)."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        # Replaces amqtt's default plugin set: no packet logger and no $SYS publisher.
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                "allow_anonymous": allow_anonymous
            },
        },
    }


@dataclass(kw_only=True)
class EmbeddedBroker(BrokerProcess):
    """An amqtt broker in a child process, shaped like ``MosquittoBroker``.

    ``start()`` again after ``kill()`` restarts it on the same port (with no retained
    messages: amqtt keeps nothing).
    """

    name = "amqtt"
    start_timeout_s = 20.0

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "simulators.embedded_broker", "--host", self.host]
        args += ["--port", str(self.port)]
        if not self.allow_anonymous:
            args.append("--no-anonymous")
        return args


# --- the child process ----------------------------------------------------------------


def _broker_class() -> Any:
    from amqtt.broker import Broker
    from amqtt.session import Session

    class _OwnRetainedBroker(Broker):  # type: ignore[misc]
        """amqtt's broker, sending retained messages only for the client's own filters."""

        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Session
        ) -> None:
            # amqtt calls this on CONNECT for every filter of every client; on SUBSCRIBE
            # the filter is already the session's own, so this keeps that case unchanged.
            holders = self._subscriptions.get(subscription[0], [])
            if any(held.client_id == session.client_id for held, _ in holders):
                await super()._publish_retained_messages_for_subscription(subscription, session)

    return _OwnRetainedBroker


async def serve(host: str, port: int, *, allow_anonymous: bool = True) -> None:
    """Run amqtt on ``host:port`` until SIGTERM or SIGINT."""
    broker_class = _broker_class()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    broker = broker_class(broker_config(host, port, allow_anonymous=allow_anonymous))
    await broker.start()
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):  # exiting anyway; the log has amqtt's own words
            await asyncio.wait_for(broker.shutdown(), timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.embedded_broker", description="amqtt on one TCP listener."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-anonymous", action="store_true", help="refuse anonymous clients")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    # amqtt logs every connection at INFO and the state machine library chatters.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    asyncio.run(serve(args.host, args.port, allow_anonymous=not args.no_anonymous))
    return 0


if __name__ == "__main__":
    sys.exit(main())
