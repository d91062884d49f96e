"""0005a: when a rollout reached every bin (``rollouts.all_at``): rollback walks back through those;
and each model's data set fingerprint (``models.dataset_fingerprint``), so that metrics from different
data sets do not read as comparable and metadata copied onto another file shows; and the shadow soak's
fields of a reading (``readings.shadow_model``, ``shadow_fill``: the previous model on the same frames).

A rollback must go back to a model that was healthy in production, never to a halted one or to one
that was rolled back from; the state column alone cannot tell (``superseded`` is set whether the
rollout reached every bin or was still in its canary stage). Rows already in ``all`` get their
last update time; a rollback is in ``all`` from its start. Older superseded rows stay unknown (NULL)
and are never rollback targets.

Revision ID: 0005a
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005a"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("all_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset_fingerprint", sa.String(length=64), nullable=True))
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shadow_model", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("shadow_fill", sa.Float(), nullable=True))
    op.execute("UPDATE rollouts SET all_at = updated_at WHERE state = 'all'")
    op.execute("UPDATE rollouts SET all_at = started_at WHERE kind = 'rollback'")


def downgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_column("shadow_fill")
        batch_op.drop_column("shadow_model")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("dataset_fingerprint")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_column("all_at")
