"""permits: the town a permit was issued for (NULL: the whole deployment)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:30:00.000000

A permit issued at central had no town: in a county, a town operator's permit exempted the
plate from every town's truck ban, and any town's staff could list and revoke every town's
permits. A permit issued under ``/api/v1/towns/{town}/`` now belongs to that town; one
issued on the unprefixed paths (county staff, or the only town of a ``--site`` central)
stays NULL and holds everywhere, as every existing permit did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("town", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_column("town")
