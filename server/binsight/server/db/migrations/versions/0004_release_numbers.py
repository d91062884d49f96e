"""0004: numbered model releases (``model_releases``) and the number each bin was last told.

Every release the server signs gets the next number from ``model_releases`` (AUTOINCREMENT on
SQLite, so a number is never handed out twice, a sequence on PostgreSQL); devices refuse any
release not numbered above the highest they accepted. Existing announcements keep their rows
with no number: they were v1 (unnumbered) releases.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_releases",
        sa.Column(
            "number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("rollout_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_model_releases")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_model_releases_version"), "model_releases", ["version"], unique=False)
    op.create_index(op.f("ix_model_releases_rollout_id"), "model_releases", ["rollout_id"], unique=False)
    with op.batch_alter_table("model_announcements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_number", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_announcements", schema=None) as batch_op:
        batch_op.drop_column("release_number")
    op.drop_index(op.f("ix_model_releases_rollout_id"), table_name="model_releases")
    op.drop_index(op.f("ix_model_releases_version"), table_name="model_releases")
    op.drop_table("model_releases")
