"""Hostile people on the uplink: a box's credentials claiming what belongs to another box.

The broker's ACL (``provision-box``) keeps a box under its own topic prefix, but under that
prefix the payload names a sign, bay, lot or zone, and central must check the name against
the site file: a box may speak only for what the site file gives it. Field configuration:
a real Mosquitto with the password file and ACL, a real ``central serve``, raw uplink-v1
published with one box's own credentials.
"""

from __future__ import annotations

import datetime as dt
import json

from firmware_protocols.uplink import Topics
from firmware_protocols.uplink.models import SignColour, SignDisplay, SignMode, SignState
from tests.badinput.test_mqtt_payloads import good_event
from tests.faults.rig import SITE_ID, record
from tests.security.test_hostile_protocol import (
    BOX,
    OTHER,
    OTHERS_SIGN,
    PLANS,
    Client,
    Field,
    _birth,
    _http,
    _stored,
    _wait,
    field,  # noqa: F401  (the module's fixture: broker, ACL, central)
)

UNLISTED_SIGN = "sign-nowhere"  # in no site file; box-02 reported it first


def _sign(sign_id: str, *, up: bool, text: str) -> bytes:
    return (
        SignState(
            sign_id=sign_id,
            bus="signs",
            unit=1,
            profile="parkgrid-guidance",
            display=SignDisplay(mode=SignMode.TEXT, text=text, colour=SignColour.RED),
            up=up,
            ts=dt.datetime.now(dt.UTC),
        )
        .model_dump_json()
        .encode()
    )


def _signs(rig: Field) -> dict[str, dict[str, object]]:
    status, body = _http(f"{rig.central.url}/api/v1/signs", token=rig.token)
    assert status == 200, body
    doc = json.loads(body)
    items = doc["items"] if isinstance(doc, dict) else doc
    return {s["id"]: s for s in items}


def _problems(rig: Field, box: str) -> set[str]:
    with rig.central.db() as conn:
        rows = conn.execute("SELECT subject FROM site_problems WHERE box_id = ?", (box,))
        return {r[0] for r in rows.fetchall()}


def test_hostile_box_claims_another_boxs_sign(field: Field) -> None:  # noqa: F811
    """box-01's credentials publish sign states for box-02's sign (in the site file) and
    for a sign box-02 reported that no site file lists: neither changes hands, what the
    signs show is box-02's word (so an operator's sign override still goes to box-02), and
    box-01's claims are recorded as site problems."""
    broker = field.broker
    mine, theirs = Topics(SITE_ID, BOX), Topics(SITE_ID, OTHER)
    other = Client(broker.port, OTHER, field.secrets[OTHER])
    box = Client(broker.port, BOX, field.secrets[BOX])
    try:
        other.publish(theirs.sign(OTHERS_SIGN), _sign(OTHERS_SIGN, up=True, text="P2 12"))
        other.publish(theirs.sign(UNLISTED_SIGN), _sign(UNLISTED_SIGN, up=True, text="P2 12"))
        _wait(lambda: {OTHERS_SIGN, UNLISTED_SIGN} <= set(_signs(field)), "box-02's signs")
        claims = [OTHERS_SIGN, UNLISTED_SIGN]
        for sign_id in claims:
            box.publish(mine.sign(sign_id), _sign(sign_id, up=False, text="CLOSED"))
        _wait(
            lambda: {f"sign/{s}" for s in claims} <= _problems(field, BOX),
            "box-01's claims recorded as site problems",
        )
    finally:
        box.close()
        other.close()
    signs = _signs(field)
    held = [s for s in claims if signs[s]["box_id"] == OTHER and signs[s]["up"] is True]
    assert held == claims, signs
    record(
        "hostile",
        "a box claims another box's sign",
        {
            "attack": "box-01's MQTT credentials publish sign states, under its own topics, "
            "for box-02's sign (site file) and for a sign only box-02 reported",
            "tried": len(claims),
            "refused": len(held),
            "notes": "the signs stay box-02's, showing box-02's word; each claim is a site "
            "problem of box-01 (was: box-01 took the sign over, so an operator's override "
            "for box-02 was refused)",
        },
    )


def _bay(bay_id: str, lot_id: str, state: str, ts: dt.datetime) -> bytes:
    return json.dumps(
        {"v": 1, "bay_id": bay_id, "lot_id": lot_id, "state": state, "since": ts.isoformat(),
         "sensor": None, "ts": ts.isoformat()}
    ).encode()  # fmt: skip


def _bay_state(rig: Field, bay_id: str) -> str | None:
    with rig.central.db() as conn:
        row = conn.execute("SELECT state FROM bays WHERE bay_id = ?", (bay_id,)).fetchone()
    return row[0] if row else None


def test_hostile_box_dates_a_state_in_the_future(field: Field) -> None:  # noqa: F811
    """A bay state dated years ahead (a box's credentials, or a box whose clock jumped)
    must not freeze the bay: the box's next honest state, dated now, still applies, and
    the far-future date is recorded as a clock problem of that box."""
    plan = PLANS[0]
    bay = next(iter(plan.bays.values()))
    topics = Topics(SITE_ID, BOX)
    now = dt.datetime.now(dt.UTC)
    box = Client(field.broker.port, BOX, field.secrets[BOX])
    tried = [dt.datetime(2999, 1, 1, tzinfo=dt.UTC), now + dt.timedelta(days=2)]
    honest: list[bool] = []
    try:
        for n, future in enumerate(tried):
            box.publish(topics.bay(bay), _bay(bay, plan.lot_id, "closed", future), retain=True)
            _wait(lambda: _bay_state(field, bay) == "closed", "the future-dated state")
            state = "occupied" if n % 2 == 0 else "free"
            later = dt.datetime.now(dt.UTC)
            box.publish(topics.bay(bay), _bay(bay, plan.lot_id, state, later), retain=True)
            box.publish(topics.event, good_event(100 + n, box=BOX))  # a marker after it
            _wait(lambda n=n: _stored(field.central, BOX, 100 + n), "the marker event")
            honest.append(_bay_state(field, bay) == state)
    finally:
        box.close()
    assert honest == [True] * len(tried), honest
    assert f"bay/{bay}/ts" in _problems(field, BOX)
    record(
        "hostile",
        "a box dates a state in the future",
        {
            "attack": "box-01's credentials publish a bay state dated 2999 and one dated "
            "2 days ahead, then an honest state dated now",
            "tried": len(tried),
            "refused": honest.count(True),
            "notes": "the honest state applied after each (was: the bay frozen until the "
            "future date); the date recorded as a clock problem of box-01",
        },
    )


def _public_lot(rig: Field, lot_id: str) -> dict[str, object] | None:
    status, body = _http(f"{rig.central.url}/api/v1/lots")
    assert status == 200, body
    doc = json.loads(body)
    items = doc["lots"] if isinstance(doc, dict) else doc
    return next((lot for lot in items if lot["id"] == lot_id), None)


def test_hostile_box_claims_more_free_bays_than_its_lot_has(field: Field) -> None:  # noqa: F811
    """box-01's credentials report its 2-bay lot with a capacity of a million, all free:
    the public lot list (what drivers see) never shows more free bays than the site file's
    capacity, and the claim is a site problem."""
    plan = PLANS[0]
    claim = {"v": 1, "lot_id": plan.lot_id, "capacity": 1_000_000, "free": 1_000_000,
             "occupied": 0, "unknown": 0, "closed": 0, "status": "spacesAvailable",
             "trend": "steady", "ts": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
    box = Client(field.broker.port, BOX, field.secrets[BOX])
    try:
        box.publish(Topics(SITE_ID, BOX).status, _birth(cap_bytes=64 * 1024), True)
        box.publish(Topics(SITE_ID, BOX).lot(plan.lot_id), json.dumps(claim).encode(), True)
        _wait(lambda: f"lot/{plan.lot_id}/capacity" in _problems(field, BOX), "the problem")
        _wait(lambda: (_public_lot(field, plan.lot_id) or {}).get("stale") is False, "online")
    finally:
        box.close()
    lot = _public_lot(field, plan.lot_id)
    assert lot is not None
    capacity = len(plan.bays)
    assert lot["capacity"] == capacity, lot
    shown = [lot[k] for k in ("free", "occupied", "unknown", "closed")]
    assert lot["free"] <= capacity and sum(shown) <= capacity, lot  # type: ignore[operator]
    record(
        "hostile",
        "a box claims more free bays than its lot has",
        {
            "attack": "box-01's credentials report its 2-bay lot with capacity 1,000,000, all free",
            "tried": 1,
            "refused": 1,
            "notes": f"the public lot list shows {lot['free']} free of {capacity} (was "
            "1,000,000 free of 2); the capacity claim is a site problem",
        },
    )
