"""Commands from central to the box: one at a time, each answered once on ``reply/{name}``.

A repeated ``command_id`` is ignored (the last ``SEEN_COMMANDS`` ids are remembered); an
expired command is answered ``ok: false, error: "expired"``; ``rebirth`` is carried out
here (``rebirth(link)``: birth and every state again); the others go to ``on_command``,
whose reply is published (``ok: false`` with the error if it raises). A malformed command
that still names a known command and a ``command_id`` is answered ``malformed command``;
otherwise it is only logged and counted. Commands wait in a bounded queue so a slow
``on_command`` never stalls the reading of acks. A command that takes long (``BACKGROUND``:
``install-release``, 20-45 s) runs in its own task, so the commands after it are not held up
(a second one of the same kind is then refused by its handler); its reply goes out on the
session's link when it ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final

from edge.agents.uplink.mqtt_link import MqttLink, MqttLinkError
from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    Command,
    CommandName,
    CommandReply,
    TopicKind,
    Topics,
    decode_message,
    encode_payload,
    parse_topic,
)

log = logging.getLogger(__name__)

SEEN_COMMANDS: Final = 1024
COMMAND_QUEUE: Final = 64
BACKGROUND: Final = frozenset({CommandName.INSTALL_RELEASE})


class CommandRunner:
    """Queues the box's commands as they arrive and runs them one at a time per session."""

    def __init__(
        self,
        *,
        topics: Topics,
        on_command: Callable[[Command], Awaitable[CommandReply]],
        rebirth: Callable[[MqttLink], Awaitable[None]],
        bad: Callable[[str, str, str], None],
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._topics = topics
        self._on_command = on_command
        self._rebirth = rebirth
        self._bad = bad
        self._clock = clock
        self._seen: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(COMMAND_QUEUE)
        self.handled = 0
        self.refused = 0
        self.repeated = 0
        self.errors = 0
        """Commands whose handling raised (logged with the stack)."""
        self._link: MqttLink | None = None
        self._background: set[asyncio.Task[None]] = set()

    def put(self, topic: str, data: bytes) -> None:
        """Queue a message from a ``cmd/`` topic (called as it is read); a full queue drops it."""
        try:
            self._queue.put_nowait((topic, data))
        except asyncio.QueueFull:
            self._bad("command-queue", topic, "command queue full, command dropped")

    async def run(self, link: MqttLink) -> None:
        """Run queued commands on ``link`` until cancelled (or the link fails)."""
        self._link = link
        try:
            while True:
                topic, data = await self._queue.get()
                try:
                    await self._handle(link, topic, data)
                except MqttLinkError:
                    raise
                except Exception:
                    self.errors += 1
                    log.exception("uplink: command on %s failed", topic)
        finally:
            if self._link is link:
                self._link = None

    async def _handle(self, link: MqttLink, topic: str, data: bytes) -> None:
        try:
            message = decode_message(topic, data)
        except DecodeError as exc:
            await self._answer_malformed(link, topic, data, str(exc))
            return
        command = message.payload
        if not isinstance(command, Command):
            return
        if command.command_id in self._seen:
            self.repeated += 1
            log.info("uplink: command %s repeated; ignored", command.command_id)
            return
        self._seen[command.command_id] = None
        while len(self._seen) > SEEN_COMMANDS:
            self._seen.popitem(last=False)
        now = self._clock()
        if command.expires_at is not None and command.expires_at <= now:
            self.refused += 1
            reply = self._reply(command.command_id, command.name, error="expired")
        elif command.name is CommandName.REBIRTH:
            await self._rebirth(link)
            reply = self._reply(command.command_id, command.name)
        elif command.name in BACKGROUND:
            task = asyncio.create_task(self._in_background(command), name=command.name.value)
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        else:
            reply = await self._answer(command)
        self.handled += 1
        await link.publish(self._topics.reply(command.name), encode_payload(reply), retain=False)

    async def _answer(self, command: Command) -> CommandReply:
        try:
            return await self._on_command(command)
        except Exception as exc:
            log.exception("uplink: command %s failed", command.name.value)
            return self._reply(command.command_id, command.name, error=f"failed: {exc}"[:500])

    async def _in_background(self, command: Command) -> None:
        """A long command: its reply on the link of the session it ends in."""
        reply = await self._answer(command)
        self.handled += 1
        link = self._link
        if link is None:
            log.warning("uplink: %s answered while disconnected; the reply is lost: %s",
                        command.name.value, reply.error or "ok")  # fmt: skip
            return
        try:
            await link.publish(
                self._topics.reply(command.name), encode_payload(reply), retain=False
            )
        except MqttLinkError as exc:
            log.warning("uplink: the reply to %s is lost: %s", command.name.value, exc)

    def _reply(
        self, command_id: uuid.UUID, name: CommandName, *, error: str | None = None
    ) -> CommandReply:
        return CommandReply(
            command_id=command_id,
            command=name,
            ok=error is None,
            error=error,
            ts=self._clock(),
        )

    async def _answer_malformed(self, link: MqttLink, topic: str, data: bytes, reason: str) -> None:
        self._bad("command", topic, reason)
        self.refused += 1
        try:
            parsed = parse_topic(topic)
            name = parsed.command
            raw = json.loads(data)
            command_id = uuid.UUID(str(raw["command_id"]))
        except (DecodeError, ValueError, KeyError, TypeError):
            return  # nothing to answer to: no known command name or no command id
        if name is None or parsed.kind is not TopicKind.CMD:
            return
        reply = self._reply(command_id, name, error=f"malformed command: {reason}"[:500])
        await link.publish(self._topics.reply(name), encode_payload(reply), retain=False)
