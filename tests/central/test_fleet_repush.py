"""A box that comes back online with a configuration push it never answered gets it again,
from central by itself (real Mosquitto, central's app with ingest, a stand-in box)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from central.db import schema as t
from firmware_protocols.uplink.models import CommandName
from simulators.broker import MosquittoBroker
from tests.central.helpers import wait_for
from tests.central.rollout_support import StandInBox, login, rollout_central


def test_a_returning_box_gets_its_unanswered_push_again(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    with rollout_central(mosquitto, tmp_path) as client:
        admin = login(client, "ada")
        # a watcher on the box's command topic: the push has passed the broker (with nobody
        # of the box to take it) before the box comes back
        watcher = StandInBox(mosquitto, "box-p1", "1.0.0")
        watcher.listen_only()
        pushed = client.post("/api/v1/fleet/config/push", json={"box_id": "box-p1"},
                             headers=admin)  # fmt: skip
        assert pushed.status_code == 202, pushed.text  # the box is away: nobody takes it
        first = pushed.json()[0]
        wait_for(lambda: watcher.received(CommandName.CONFIG_PUSH), what="the push to pass")
        watcher.close()
        box = StandInBox(mosquitto, "box-p1", "1.0.0")
        try:
            box.online()
            got = wait_for(lambda: box.received(CommandName.CONFIG_PUSH), what="the push again")
            body = got[0]["body"]
            assert (body["version"], body["hash"]) == (first["version"], first["hash"])
            assert got[0]["command_id"] != first["command_id"]  # a new command, not a replay
            engine = client.app.state.central.engine  # type: ignore[attr-defined]
            with engine.connect() as conn:
                audit = conn.execute(
                    select(t.audit.c.actor, t.audit.c.detail).where(
                        t.audit.c.action == "fleet.config-push"
                    )
                ).all()
            assert [a for a, _ in audit] == ["user:ada", "fleet:box-back"]
            assert json.loads(audit[1][1])["version"] == first["version"]
            # once: the box's next status (same boot) brings no third push
            box.rebirth_same_boot()
            wait_for(lambda: False or _pause(0.5), what="a few engine beats")
            assert len(box.received(CommandName.CONFIG_PUSH)) == 1
        finally:
            box.close()


def _pause(seconds: float) -> bool:
    import time

    time.sleep(seconds)
    return True
