"""What the stages need of the uplink: emit an event, publish a retained state.

The MQTT uplink (``edge.agents.uplink.Uplink``) is the one implementation; a stage is given
it as an ``Outlet`` with the box's ``Topics``, so no stage depends on how MQTT is spoken.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel


class Outlet(Protocol):
    def emit(self, body: BaseModel, ts: datetime | None = None) -> int:
        """Commit an event to the outbox (it is published after); its seq."""
        ...

    def publish_state(self, topic: str, model: BaseModel) -> None:
        """Publish a retained state (latest wins)."""
        ...
