"""hub nodes, and who claimed each flow request with its run's last heartbeat

Revision ID: b7e3d1f0a925
Revises: c4f2a9e6d180
Create Date: 2026-11-30 10:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "b7e3d1f0a925"
down_revision = "c4f2a9e6d180"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_nodes",
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", hub.kernel.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_hub_nodes")),
    )
    with op.batch_alter_table("hub_nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hub_nodes_last_seen_at"), ["last_seen_at"], unique=False)
    with op.batch_alter_table("flow_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", hub.kernel.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_requests", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("hub_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hub_nodes_last_seen_at"))
    op.drop_table("hub_nodes")
