"""0005d: ``alert_states``, the last alerted state of each bin's fill level and camera.

An alert is sent once per state change: the process whose conditional update moves the row from
the old state to the new one sends it, so several server processes (one shared subscription group)
and restarts never send the same change twice. Additive: a new table, nothing else touched.

Revision ID: 0005d
Revises: 0005b
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005d"
down_revision = "0005b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("bin_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bin_id", "kind", name=op.f("pk_alert_states")),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
