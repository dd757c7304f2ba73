"""The ledger: any stored field of any entry changed, or any entry deleted, is named by verify."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, delete, update

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ledger.chain import FIELDS, GENESIS, append, entry_hash, verify
from tests.central.conftest import pg_schema_url  # noqa: F401  (fixture: a PostgreSQL schema)
from tests.faults.rig import ROOT, record

ENTRIES = 5


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'central.db'}"
    else:
        url = str(request.getfixturevalue("pg_schema_url"))
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for i in range(1, ENTRIES + 1):
            append(
                conn,
                at=1_740_000_000.0 + i,
                kind="violation" if i % 2 else "status",
                ref_seq=None if i % 2 else i - 1,
                rule_id="no_parking",
                rule_version=1,
                plate=f"鲁D{i:05d}",
                plate_color="blue",
                vehicle_class="car",
                ga_plate_type="02",
                place="R1",
                grid_id="G1",
                evidence=f'{{"capture": {i}}}',
                fine_cny=200,
                points=3,
                status="open",
                reason="parked on the no-parking stretch",
                actor="camera:C1",
                dedup_key=f"k{i}",
            )
    assert verify(engine).ok
    yield engine, url
    engine.dispose()


def _tampered(name: str, value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:  # a value of the column's type: PostgreSQL refuses "x" for a BIGINT
        return 1 if t.ledger.c[name].type.python_type is int else "x"
    text = str(value)  # the last character changed: the length fits a VARCHAR(n) on PostgreSQL
    return text[:-1] + ("y" if text.endswith("x") else "x")


def test_security_ledger_every_field_change_and_deletion_named(
    ledger: tuple[Engine, str],
) -> None:
    """Each field of each entry changed in turn, and each entry deleted: verify names it."""
    engine, _ = ledger
    columns = [*FIELDS, "hash"]
    tried, missed = 0, []
    for seq in range(1, ENTRIES + 1):
        for name in columns:
            if name == "seq":
                continue  # renumbering is a deletion plus an insertion: covered below
            with engine.connect() as conn:
                old = (
                    conn.execute(t.ledger.select().where(t.ledger.c.seq == seq))
                    .one()
                    ._mapping[name]
                )
            with engine.begin() as conn:
                conn.execute(
                    update(t.ledger)
                    .where(t.ledger.c.seq == seq)
                    .values({name: _tampered(name, old)})
                )
            result = verify(engine)
            tried += 1
            if result.ok or result.bad_seq != seq:
                missed.append(f"entry {seq} field {name}: {result}")
            with engine.begin() as conn:
                conn.execute(update(t.ledger).where(t.ledger.c.seq == seq).values({name: old}))
            assert verify(engine).ok
    deletions_missed = []
    for seq in range(1, ENTRIES + 1):
        with engine.connect() as conn:
            row = dict(conn.execute(t.ledger.select().where(t.ledger.c.seq == seq)).one()._mapping)
        with engine.begin() as conn:
            conn.execute(delete(t.ledger).where(t.ledger.c.seq == seq))
        result = verify(engine)
        tried += 1
        if result.ok or result.bad_seq not in (seq, seq + 1):
            deletions_missed.append(f"delete entry {seq}: {result}")
        with engine.begin() as conn:
            conn.execute(t.ledger.insert().values(**row))
    on = "" if engine.dialect.name == "sqlite" else ", PostgreSQL"
    record(
        "security",
        f"ledger tamper (verify-ledger{on})",
        {
            "cases": tried,
            "refused": tried - len(missed) - len(deletions_missed),
            "how": "verify names the changed entry; a deleted entry is named as missing",
            "missed": missed + deletions_missed,
        },
    )
    assert missed == []
    assert deletions_missed == []


def test_security_ledger_newest_entry_deleted_is_detected(ledger: tuple[Engine, str]) -> None:
    """Deleting the newest entry is detected too."""
    engine, _ = ledger
    with engine.begin() as conn:
        conn.execute(delete(t.ledger).where(t.ledger.c.seq == ENTRIES))
    assert not verify(engine).ok


def test_security_ledger_cli_names_the_tampered_entry(ledger: tuple[Engine, str]) -> None:
    """`parkgrid central verify-ledger` exits 1 naming the changed entry."""
    engine, url = ledger
    with engine.begin() as conn:
        conn.execute(update(t.ledger).where(t.ledger.c.seq == 3).values(fine_cny=1))
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", "verify-ledger", "--database-url", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ran.returncode == 1
    assert "entry 3" in ran.stderr


def _newest(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        row = conn.execute(t.ledger.select().order_by(t.ledger.c.seq.desc()).limit(1)).one()
    return dict(row._mapping)


def _append(conn: Connection, key: str) -> dict[str, object]:
    return append(
        conn, at=1_740_000_100.0, kind="violation", evidence="{}", status="open", dedup_key=key
    )


def test_security_ledger_append_after_deleting_newest_keeps_the_gap(
    ledger: tuple[Engine, str],
) -> None:
    """An entry appended after the newest was deleted follows the head: the gap stays named."""
    engine, _ = ledger
    with engine.begin() as conn:
        conn.execute(delete(t.ledger).where(t.ledger.c.seq == ENTRIES))
    with engine.begin() as conn:
        row = _append(conn, "after")
    assert row["seq"] == ENTRIES + 1
    result = verify(engine)
    assert not result.ok and result.bad_seq == ENTRIES
    assert f"entry {ENTRIES} is missing" in (result.reason or "")


@pytest.mark.parametrize(
    ("change", "bad_seq", "words"),
    [
        pytest.param({"seq": ENTRIES - 1}, ENTRIES, "past the recorded head", id="head-set-back"),
        pytest.param({"hash": "f" * 64}, ENTRIES, "recorded head", id="head-hash-changed"),
        pytest.param(None, ENTRIES, "recorded head is missing", id="head-deleted"),
    ],
)
def test_security_ledger_head_row_tampered_is_named(
    ledger: tuple[Engine, str], change: dict[str, object] | None, bad_seq: int, words: str
) -> None:
    """The head row moved, changed or deleted without the entries: verify says so."""
    engine, _ = ledger
    with engine.begin() as conn:
        if change is None:
            conn.execute(delete(t.ledger_head))
        else:
            conn.execute(update(t.ledger_head).values(change))
    result = verify(engine)
    assert not result.ok and result.bad_seq == bad_seq
    assert words in (result.reason or "")


def test_security_ledger_verify_gives_the_head_to_publish(ledger: tuple[Engine, str]) -> None:
    """A sound ledger verifies to its newest entry's seq and hash, equal to the recorded head."""
    engine, url = ledger
    newest = _newest(engine)
    result = verify(engine)
    assert result.ok and result.head_seq == ENTRIES and result.head_hash == newest["hash"]
    assert result.recorded == result.head
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "central", "verify-ledger", "--database-url", url],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ran.returncode == 0
    assert f"head seq {ENTRIES} hash {newest['hash']}" in ran.stdout


def test_security_ledger_head_logged_once_committed(
    ledger: tuple[Engine, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Each committed append logs the new head in one INFO line; a rolled-back one logs none."""
    engine, _ = ledger
    caplog.set_level(logging.INFO, logger="central.ledger.chain")
    with engine.connect() as conn, conn.begin() as tx:
        _append(conn, "rolled-back")
        tx.rollback()
    assert [r for r in caplog.records if "ledger head" in r.getMessage()] == []
    with engine.begin() as conn:
        row = _append(conn, "kept")
    lines = [r.getMessage() for r in caplog.records if "ledger head" in r.getMessage()]
    assert lines == [f"ledger head seq {row['seq']} hash {row['hash']}"]
    assert row["seq"] == ENTRIES + 1 and verify(engine).ok


def test_security_ledger_migration_takes_the_head_from_the_newest_entry(tmp_path: Path) -> None:
    """A ledger written before migration 0003 gets its head from its newest entry."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0002")
    prev = GENESIS
    with engine.begin() as conn:
        for seq in (1, 2):
            row = {name: None for name in FIELDS} | {
                "seq": seq,
                "at": 1_740_000_000.0 + seq,
                "kind": "violation",
                "evidence": "{}",
                "status": "open",
                "dedup_key": f"old{seq}",
                "prev_hash": prev,
            }
            row["hash"] = prev = entry_hash(row)
            conn.execute(t.ledger.insert().values(**row))
    upgrade(engine)
    result = verify(engine)
    engine.dispose()
    assert result.ok and result.head_seq == 2 and result.recorded == result.head
    assert result.head_hash == prev
