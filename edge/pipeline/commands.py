"""The box's commands: a table from command name to the stage's handler that runs it.

A handler gets the command and the box's clock reading and returns None when done, or the
reason it refused (a reply's ``error``); a slow one (``install-release``) returns an awaitable
of the same, awaited here. A name with no handler in the table is refused by
name, so a command added to the protocol before the box learns it gets a clear answer.
``rebirth`` has an entry that does nothing: the uplink publishes the birth and every state
again after the reply.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from firmware_protocols.uplink.models import Command, CommandReply

CommandHandler = Callable[[Command, float], str | Awaitable[str | None] | None]


class CommandTable:
    """Runs a command through its handler and answers with the reply."""

    def __init__(
        self,
        handlers: Mapping[str, CommandHandler],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.handlers = dict(handlers)
        self._clock = clock

    async def run(self, command: Command) -> CommandReply:
        handler = self.handlers.get(command.body.command)
        if handler is None:
            error: str | None = f"this box does not run {command.body.command}"
        else:
            outcome = handler(command, self._clock())
            error = await outcome if inspect.isawaitable(outcome) else outcome
        return CommandReply(
            command_id=command.command_id,
            command=command.name,
            ok=error is None,
            error=error,
            ts=datetime.fromtimestamp(self._clock(), UTC),
        )


def rebirth(command: Command, now: float) -> None:
    """Nothing to do here: the uplink sends the birth and every state after the reply."""
