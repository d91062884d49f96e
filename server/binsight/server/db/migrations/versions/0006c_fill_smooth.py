"""0006c: the smoothed fill beside each raw reading, and each bin's smoothing state.

``readings.fill_smooth``: the server's smoothed fill as it stood when the reading arrived (only rises
between collections; binsight.server.forecast.smoothing). ``devices.fill_smooth`` is the newest one and
``devices.smooth`` the filter's state (a few numbers, JSON). Additive: nullable columns; readings stored
before this migration keep a null ``fill_smooth``, and each bin's filter starts at its next reading.

Revision ID: 0006c
Revises: 0005d
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006c"
down_revision = "0005d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("fill_smooth", sa.Float(), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("fill_smooth", sa.Float(), nullable=True))
        batch.add_column(sa.Column("smooth", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("smooth")
        batch.drop_column("fill_smooth")
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("fill_smooth")
