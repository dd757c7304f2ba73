from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from central.commands import service
from central.commands.models import CommandIn, CommandOut
from central.deps import CentralDep, Operator, Viewer
from central.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["commands"])


@router.post(
    "/boxes/{box_id}/commands",
    response_model=CommandOut,
    status_code=202,
    summary="Send a command to a box; its reply shows up on the command",
)
def send(box_id: str, request: CommandIn, central: CentralDep, actor: Operator) -> CommandOut:
    mqtt = central.mqtt
    return service.send(
        central.engine,
        site=central.index,
        box_id=box_id,
        body=request.body,
        expires_in_s=request.expires_in_s or central.settings.command_ttl_s,
        actor=actor.label,
        publish=mqtt.publish_command if mqtt is not None else None,
    )


@router.get("/boxes/{box_id}/commands", response_model=list[CommandOut], summary="Commands")
def commands(
    box_id: str,
    central: CentralDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CommandOut]:
    if box_id not in central.index.boxes:
        raise NotFound("box", box_id)
    return service.list_commands(central.engine, box_id=box_id, limit=limit)


@router.get("/commands/{command_id}", response_model=CommandOut, summary="One command")
def command(command_id: str, central: CentralDep, _: Viewer) -> CommandOut:
    found = service.get_command(central.engine, command_id)
    if not central.shows(found.box_id):  # a command to another town's box
        raise NotFound("command", command_id)
    return found
