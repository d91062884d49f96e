"""0006e: a reading's class probability (``readings.label_prob``), beside its class (``label``).

A fill model with a class head (docs/contracts.md, "The model file") sends the class it sees
(``overflowing``, ``contaminated``...) and that class's probability with each fill. ``label`` was
already stored (class models); older readings keep ``label_prob`` NULL.

Revision ID: 0006e
Revises: 0006c
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006e"
down_revision = "0006c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label_prob", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_column("label_prob")
