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


def test_outstanding_finds_only_the_box_back_since_an_unanswered_push(tmp_path: Path) -> None:
    """The fleet job's beat asks the store for candidates only: a box with no push, with
    its newest push answered, with an unanswered push newer than its last birth, or
    offline, is not returned (nor its status read)."""
    import uuid

    from central.db.engine import make_engine
    from central.db.migrate import upgrade
    from central.fleet.repush import outstanding
    from central.fleet.service import PUSH

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    boxes = {  # box: (online, last birth at, pushes as (issued_at, reply_at))
        "quiet": (True, 100.0, []),
        "answered": (True, 100.0, [(50.0, 60.0)]),
        "not-back-yet": (True, 40.0, [(50.0, None)]),
        "back": (True, 100.0, [(10.0, 20.0), (50.0, None)]),
        "answered-last": (True, 100.0, [(10.0, None), (50.0, 55.0)]),
        "offline": (False, 100.0, [(50.0, None)]),
    }
    with engine.begin() as conn:
        for box, (online, birth, pushes) in boxes.items():
            row = {"box_id": box, "online": online, "status_changed_at": birth}
            conn.execute(t.boxes.insert().values(**row, status_json="{}"))
            for issued, reply in pushes:
                conn.execute(t.commands.insert().values(
                    command_id=str(uuid.uuid4()), box_id=box, name=PUSH, payload="{}",
                    issued_by="test", issued_at=issued, reply_at=reply,
                ))  # fmt: skip
    assert [r.box_id for r in outstanding(engine, list(boxes))] == ["back"]
    assert outstanding(engine, ["quiet", "answered"]) == []
    engine.dispose()


def test_the_repush_beat_asks_the_store_once_for_every_town(tmp_path: Path) -> None:
    """A county's fleet job ran one candidate query per town every beat (50 queries each 2
    s, a quarter of the lease holder's CPU at the county bench's 1x): it asks once for the
    boxes of every town, and a candidate is pushed by its own town's site file."""
    import uuid

    from sqlalchemy import event

    from central.db.engine import make_engine
    from central.db.migrate import upgrade
    from central.fleet.repush import repush_returned
    from central.fleet.service import PUSH
    from site_model.county import load_county
    from tests.central.county_support import write_county

    sites = list(load_county(write_county(tmp_path)).towns.values())
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    queries: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: queries.append(a[2]))

    def reads() -> list[str]:
        return [q for q in queries if q.lstrip().upper().startswith("SELECT")]

    sent: list[str] = []

    def publish(topic: str, payload: bytes, expires_at: float | None) -> bool:
        sent.append(topic)
        return True

    assert repush_returned(engine, sites, mqtt_url="mqtt://b:1883", publish=publish) == []
    assert len(reads()) == 1, queries  # one beat, two towns: one query

    back = next(iter(sites[1].boxes))  # a box of the second town, back since its push
    with engine.begin() as conn:
        conn.execute(t.boxes.insert().values(box_id=back, online=True, status_changed_at=100.0,
                                             status_json="{}"))  # fmt: skip
        conn.execute(t.commands.insert().values(
            command_id=str(uuid.uuid4()), box_id=back, name=PUSH,
            payload=json.dumps({"body": {"version": 1, "hash": _desired_hash(sites[1], back)}}),
            issued_by="test", issued_at=50.0,
        ))  # fmt: skip
    pushed = repush_returned(engine, sites, mqtt_url="mqtt://b:1883", publish=publish)
    assert [p.box_id for p in pushed] == [back]
    assert sent == [f"parkgrid/v1/{sites[1].site.id}/{back}/cmd/config-push"]  # its town's
    engine.dispose()


def _desired_hash(site: object, box_id: str) -> str:
    from central.fleet.desired import desired_for

    return desired_for(site, box_id, mqtt_url="mqtt://b:1883").hash  # type: ignore[arg-type]
