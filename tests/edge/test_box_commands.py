"""The box's commands: one handler per command name in a table; a name with no handler is
refused with a reply that says so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from edge.pipeline.commands import CommandTable
from firmware_protocols.uplink.models import CloseBay, Command, CommandBody, Rebirth

NOW = 1_700_000_000.0


def _command(body: CommandBody) -> Command:
    return Command(command_id=uuid.uuid4(), issued_at=datetime.now(UTC), body=body)


async def test_each_command_goes_to_its_own_handler_with_the_box_clock() -> None:
    seen: list[tuple[str, float]] = []
    table = CommandTable(
        {
            "rebirth": lambda command, now: seen.append(("rebirth", now)),
            "close-bay": lambda command, now: seen.append((command.body.bay_id, now)),
        },
        clock=lambda: NOW,
    )
    command = _command(CloseBay(bay_id="B001", reason="works"))
    reply = await table.run(command)
    assert seen == [("B001", NOW)]
    assert (reply.ok, reply.error, reply.command_id) == (True, None, command.command_id)
    assert reply.command.value == "close-bay" and reply.ts == datetime.fromtimestamp(NOW, UTC)


async def test_a_handler_refusal_is_the_reply_error() -> None:
    table = CommandTable({"close-bay": lambda command, now: "no bay B9 on this box"})
    reply = await table.run(_command(CloseBay(bay_id="B9", reason="works")))
    assert (reply.ok, reply.error) == (False, "no bay B9 on this box")


async def test_a_command_with_no_handler_is_refused_by_name() -> None:
    table = CommandTable({"close-bay": lambda command, now: None}, clock=lambda: NOW)
    reply = await table.run(_command(Rebirth()))
    assert reply.ok is False
    assert reply.error == "this box does not run rebirth"
    assert reply.command.value == "rebirth"
