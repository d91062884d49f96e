"""0003: device events unique on (bin_id, ts, kind, state, ref), so a resent event is stored once.

Copies already stored (same device, time, kind, state and ref) are merged first, keeping the
earliest row; rows without a ref are left alone (the index never merges them either).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM device_events WHERE ref IS NOT NULL AND id NOT IN ("
        "SELECT MIN(id) FROM device_events WHERE ref IS NOT NULL GROUP BY bin_id, ts, kind, state, ref)"
    )
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.create_index("uq_device_events_event", ["bin_id", "ts", "kind", "state", "ref"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("device_events", schema=None) as batch_op:
        batch_op.drop_index("uq_device_events_event")
