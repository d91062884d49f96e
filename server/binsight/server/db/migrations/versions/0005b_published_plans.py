"""0005b: published plans, drivers' stop updates, and the truck a driver's token opens.

A plan gets its service day (``service_day``, also in its problem's ``name``) and, once a dispatcher
publishes it, ``published_at``/``published_by``: drivers see only the published plan of their day,
never whatever was planned last. ``stop_updates`` holds what drivers report per stop (done, blocked,
overflowing), with time and who, for the bins' history and later reports. ``api_tokens.truck`` names
the truck a ``driver`` token belongs to. Additive only: existing rows keep their values (NULL).

Revision ID: 0005b
Revises: 0005a
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005b"
down_revision = "0005a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("service_day", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("published_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("published_by", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_plans_service_day"), ["service_day"], unique=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("truck", sa.String(length=64), nullable=True))
    op.create_table(
        "stop_updates",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("truck", sa.String(length=64), nullable=False),
        sa.Column("bin_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stop_updates")),
    )
    op.create_index(op.f("ix_stop_updates_plan_id"), "stop_updates", ["plan_id"], unique=False)
    op.create_index(op.f("ix_stop_updates_bin_id_ts"), "stop_updates", ["bin_id", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stop_updates_bin_id_ts"), table_name="stop_updates")
    op.drop_index(op.f("ix_stop_updates_plan_id"), table_name="stop_updates")
    op.drop_table("stop_updates")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("truck")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_service_day"))
        batch_op.drop_column("published_by")
        batch_op.drop_column("published_at")
        batch_op.drop_column("service_day")
