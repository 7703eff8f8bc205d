"""drop the position history's index on vehicle_id alone

The unique (vehicle_id, at, seq) index already serves every lookup by vehicle; the second index
only made each telemetry insert write one more B-tree.

Revision ID: a41c7e2d9b10
Revises: 68915fb07ab6
Create Date: 2026-11-29 03:20:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "a41c7e2d9b10"
down_revision = "68915fb07ab6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vehicle_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_vehicle_positions_vehicle_id")


def downgrade() -> None:
    with op.batch_alter_table("vehicle_positions", schema=None) as batch_op:
        batch_op.create_index("ix_vehicle_positions_vehicle_id", ["vehicle_id"], unique=False)
