"""Alembic environment for central: runs on the connection ``central.db.migrate`` hands in."""

from __future__ import annotations

from alembic import context

from central.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through central.db.migrate
    raise RuntimeError("run migrations through `parkgrid central migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
