"""The ledger: any stored field of any entry changed, or any entry deleted, is named by verify."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, update

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ledger.chain import FIELDS, append, verify
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
