"""0006b: ``bins.address``, the street address a driver reads on the manifest.

The bins import takes an optional ``address`` column (CSV) or property (GeoJSON); the API, the map's
bin details and the drivers' manifests show it. Additive: existing bins keep NULL.

Revision ID: 0006b
Revises: 0006e
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006b"
down_revision = "0006e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bins", schema=None) as batch_op:
        batch_op.drop_column("address")
