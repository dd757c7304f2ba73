"""The writer's one-statement-per-batch reads on PostgreSQL read each box through its index.

A batch's held events, its marks' probes and hole reads are each one statement for all the
batch's boxes (``events._HELD_ALL``, ``marks._PROBE_ALL``, ``_HOLE_SEQS_ALL``,
``_HOLE_RANGES_ALL``): an ``unnest`` of the boxes and a LATERAL subquery per box. Measured
in the county bench, the first form of the held-events read let the planner flatten its
subquery into a join; with a month's partition grown past its statistics (as every live
partition is) the generic plan hashed the batch against a sequential scan of every stored
event: 18 ms a batch, PostgreSQL at a quarter of a core after a 200,000-event replay. Here
each statement's generic plan (what psycopg's prepared statements run after five
executions) is read as it is made at start-up, over empty partitions, and kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, TextClause, text

from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.events import _HELD_ALL
from central.ingest.marks import _HOLE_RANGES_ALL, _HOLE_SEQS_ALL, _PROBE_ALL

# (statement, its parameters in order, their types, values for EXPLAIN EXECUTE)
CASES = {
    "held": (_HELD_ALL, ["boxes", "los", "his"], ["text[]", "bigint[]", "bigint[]"],
             ["{b1,b2}", "{100,200}", "{110,210}"]),
    "probe": (_PROBE_ALL, ["boxes", "acked"], ["text[]", "bigint[]"], ["{b1,b2}", "{100,200}"]),
    "hole seqs": (_HOLE_SEQS_ALL, ["boxes", "acked", "upper", "seqs"],
                  ["text[]", "bigint[]", "bigint[]", "bigint"],
                  ["{b1,b2}", "{100,200}", "{150,250}", "5000"]),
    "hole ranges": (_HOLE_RANGES_ALL, ["boxes", "acked", "upper", "ranges"],
                    ["text[]", "bigint[]", "bigint[]", "bigint"],
                    ["{b1,b2}", "{100,200}", "{150,250}", "1000"]),
}  # fmt: skip


@pytest.fixture
def store(pg_schema_url: str) -> Iterator[Engine]:
    """A store as central starts on it: its partitions (nearly) empty. psycopg prepares a
    statement after five runs and PostgreSQL keeps the generic plan made then while the
    partition grows by the minute: the plan made on a small partition must still read
    each box through its index."""
    engine = make_engine(pg_schema_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _generic_plan(engine: Engine, statement: TextClause, names: list[str], types: list[str],
                  values: list[str]) -> str:  # fmt: skip
    sql = statement.text
    for k, name in enumerate(names, 1):
        sql = re.sub(rf":{name}\b", f"${k}", sql)
    args = ", ".join(f"'{v}'::{t}" for v, t in zip(values, types, strict=True))
    with engine.connect() as conn:
        conn.execute(text("SET plan_cache_mode = force_generic_plan"))
        conn.exec_driver_sql(f"PREPARE q ({', '.join(types)}) AS {sql}")
        plan = conn.exec_driver_sql(f"EXPLAIN EXECUTE q ({args})").scalars().all()
        conn.exec_driver_sql("DEALLOCATE q")
    return "\n".join(plan)


@pytest.mark.parametrize("case", list(CASES))
def test_each_box_is_read_through_its_index_in_the_generic_plan(store: Engine, case: str) -> None:
    statement, names, types, values = CASES[case]
    plan = _generic_plan(store, statement, names, types, values)
    assert "Seq Scan on events" not in plan, plan
    assert "Hash Join" not in plan, plan
