"""Schema migrations (Alembic), run from code: ``upgrade(engine)``, ``check(engine)``.

The Alembic scripts live in ``central/db/migrations``; there is no ``alembic.ini``: the
configuration is built here, so ``parkgrid central migrate`` and the ``serve`` start-up need
nothing beside the package.
"""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from central.db.engine import writer
from central.db.schema import metadata

SCRIPTS = Path(__file__).with_name("migrations")
PARTITION = re.compile(r"^events_(\d{4}_\d{2}|default)$")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest by default)."""
    config = _config()
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (``"base"``: empty), for a central release
    rolled back to an older one; each migration keeps the rows it can, or refuses."""
    config = _config()
    with writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "no migrations"
    return found


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _not_a_partition(name: str | None, type_: str, _parents: object) -> bool:
    # The month partitions of ``events`` (PostgreSQL) are part of it, not tables of their own.
    return not (type_ == "table" and name is not None and PARTITION.match(name) is not None)


def differences(engine: Engine) -> list[object]:
    """What differs between the database and ``schema.metadata`` (empty when in step)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _not_a_partition}
        )
        return list(compare_metadata(ctx, metadata))


def revise(engine: Engine, message: str) -> None:  # pragma: no cover - developer tool
    """Write a new revision from the difference between ``engine``'s database and the schema."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)
