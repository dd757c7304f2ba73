"""picture_cameras: which cameras gave central each picture

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 19:10:00.000000

A county town's view (``/api/v1/towns/{town}/pictures/{sha256}``) served any town's
evidence picture by its hash. A picture is now served in a town's view only if one of the
town's cameras gave it (uploaded it, or sent it in a capture), and a camera may name by hash
only a picture its town gave. The table is filled from the pictures every stored capture
names; a picture uploaded before this revision and named by no capture is seen by county
staff only (as every picture is on the unprefixed paths).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHUNK = 5000


def upgrade() -> None:
    op.create_table(
        "picture_cameras",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "camera_id", name=op.f("pk_picture_cameras")),
    )
    _fill_from_captures(op.get_bind())


def _fill_from_captures(conn: sa.Connection) -> None:
    """One row per (picture, camera) every stored capture names, read in id order."""
    captures = sa.table("captures", sa.column("id"), sa.column("camera_id"), sa.column("pictures"))
    target = sa.table("picture_cameras", sa.column("sha256"), sa.column("camera_id"))
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(target).on_conflict_do_nothing()
    after = 0
    while True:
        rows = conn.execute(
            sa.select(captures.c.id, captures.c.camera_id, captures.c.pictures)
            .where(captures.c.id > after)
            .order_by(captures.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        pairs = {
            (picture["sha256"], row.camera_id)
            for row in rows
            for picture in json.loads(row.pictures or "[]")
            if picture.get("sha256")
        }
        if pairs:
            conn.execute(insert, [{"sha256": s, "camera_id": c} for s, c in sorted(pairs)])


def downgrade() -> None:
    op.drop_table("picture_cameras")
