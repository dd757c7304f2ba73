"""A pure-Python MQTT broker (amqtt) on a free loopback port: the demo's fallback broker.

``parkgrid demo`` uses mosquitto when the machine has it; without it, this broker keeps the
demo to nothing outside the Python install. It has the same shape as
``simulators.broker.MosquittoBroker`` (``start()``/``stop()``, ``url``, ``port``, a context
manager) and runs amqtt in a child process (``python -m simulators.embedded_broker``), so it
does not share a GIL with the demo's simulators and can be stopped like any other child.

Theory of operation
-------------------
The child builds its amqtt configuration from its arguments: one TCP listener on
``host:port``, none of amqtt's packet or ``$SYS`` plugins (they cost per message), anonymous
clients allowed unless told otherwise. The demo runs it as the town's broker is run: no
anonymous clients, a password per user (``--password-file``, argon2 hashes: amqtt does not
read Mosquitto's) and the same publish/subscribe lists as the Mosquitto ACL provision-box
writes (``--acl-file``, made by ``write_access`` from ``central.provision``'s lists). It
serves until SIGTERM or SIGINT, then shuts amqtt down, which closes every client (their
Last Wills are published, as after a crash).

::

    parent (MosquittoBroker-shaped)          child: python -m simulators.embedded_broker
      start() --Popen(host, port)-->  amqtt Broker -- listener host:port <== MQTT 3.1.1 clients
      wait_for_port(host, port)
      stop()  --SIGTERM-->            broker.shutdown(), exit 0

Two amqtt defects are corrected here (``_OwnRetainedBroker``): on every CONNECT amqtt 0.12.1
sends the new client the retained messages matching *any* client's subscription, so a box
connecting would get every other box's retained status, state and ack on topics it never
subscribed to; retained messages go only to a client holding a matching subscription. And
with an ACL, its per-receiver check during a broadcast can drop the message when a client
subscribes at the same moment; the subscribe check alone decides what a client receives.

Limits (amqtt 0.12): MQTT 3.1.1 only (an MQTT 5 CONNECT gets no answer, so no ``$share``),
no persistence, and about 2,000 QoS 1 messages a second from one publisher on our machine:
enough for the demo, not a production broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.broker import BrokerProcess


def password_line(user: str, password: str) -> str:
    """``user:hash`` for amqtt's password file (argon2, the hash amqtt verifies; it does not
    read Mosquitto's ``$7$`` hashes)."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return f"{user}:{PasswordHash((Argon2Hasher(),)).hash(password)}"


def write_access(
    workdir: Path,
    *,
    passwords: dict[str, str],
    publish: dict[str, list[str]],
    subscribe: dict[str, list[str]],
) -> tuple[Path, Path]:
    """The password file and the ACL (JSON: who may publish to and subscribe to what) the
    child enforces; returns their paths. Both files are 0600."""
    workdir.mkdir(parents=True, exist_ok=True)
    passwd, acl = workdir / "amqtt-passwd", workdir / "amqtt-acl.json"
    lines = [password_line(user, secret) for user, secret in passwords.items()]
    for path, text in (
        (passwd, "\n".join(lines) + "\n"),
        (acl, json.dumps({"publish": publish, "subscribe": subscribe}, indent=1)),
    ):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    return passwd, acl


def broker_config(
    host: str,
    port: int,
    *,
    allow_anonymous: bool = True,
    password_file: Path | None = None,
    acl_file: Path | None = None,
) -> dict[str, Any]:
    """amqtt's configuration for one loopback listener (the child builds it from this).

    With ``password_file`` a client must give a user and its password; with ``acl_file``
    (``write_access``) it publishes and subscribes only where its lists say.
    """
    # Replaces amqtt's default plugin set: no packet logger and no $SYS publisher.
    plugins: dict[str, Any] = {
        "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": allow_anonymous},
    }
    if password_file is not None:
        plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {
            "password_file": str(password_file)
        }
    if acl_file is not None:
        acl = json.loads(acl_file.read_text(encoding="utf-8"))
        plugins["amqtt.plugins.topic_checking.TopicAccessControlListPlugin"] = {
            "acl": acl["subscribe"],  # amqtt 0.12's name for its subscribe list
            "publish_acl": acl["publish"],
        }
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": plugins,
    }


@dataclass(kw_only=True)
class EmbeddedBroker(BrokerProcess):
    """An amqtt broker in a child process, shaped like ``MosquittoBroker``.

    ``start()`` again after ``kill()`` restarts it on the same port (with no retained
    messages: amqtt keeps nothing).
    """

    password_file: Path | None = None
    acl_file: Path | None = None

    name = "amqtt"
    start_timeout_s = 20.0

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "simulators.embedded_broker", "--host", self.host]
        args += ["--port", str(self.port)]
        if not self.allow_anonymous:
            args.append("--no-anonymous")
        if self.password_file is not None:
            args += ["--password-file", str(self.password_file)]
        if self.acl_file is not None:
            args += ["--acl-file", str(self.acl_file)]
        return args


# --- the child process ----------------------------------------------------------------


def _broker_class() -> Any:
    from amqtt.broker import Broker
    from amqtt.contexts import Action
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

        async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
            # amqtt asks the ACL plugin again for every receiver while it iterates over its
            # subscriptions; that await lets a (un)subscribe change the dict mid-loop
            # ("dictionary changed size during iteration": the message is not delivered).
            # The subscribe list already decides what a client receives, so no check here.
            if action is Action.RECEIVE:
                return True
            result: bool = await super()._topic_filtering(session, topic, action)
            return result

    return _OwnRetainedBroker


async def serve(
    host: str,
    port: int,
    *,
    allow_anonymous: bool = True,
    password_file: Path | None = None,
    acl_file: Path | None = None,
) -> None:
    """Run amqtt on ``host:port`` until SIGTERM or SIGINT."""
    broker_class = _broker_class()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = broker_config(
        host, port, allow_anonymous=allow_anonymous, password_file=password_file, acl_file=acl_file
    )
    broker = broker_class(config)
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
    parser.add_argument("--password-file", type=Path, help="user:argon2 lines (write_access)")
    parser.add_argument("--acl-file", type=Path, help="publish/subscribe lists (write_access)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    # amqtt logs every connection at INFO and the state machine library chatters.
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    asyncio.run(
        serve(
            args.host,
            args.port,
            allow_anonymous=not args.no_anonymous,
            password_file=args.password_file,
            acl_file=args.acl_file,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
