"""notice routing: the officer and leader on duty a notice was routed to

Revision ID: c3f8a2d6e517
Revises: a7e3d19c5b42
Create Date: 2026-11-30 11:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3f8a2d6e517"
down_revision = "a7e3d19c5b42"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duty_officer", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("duty_leader", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("duty_leader")
        batch_op.drop_column("duty_officer")
