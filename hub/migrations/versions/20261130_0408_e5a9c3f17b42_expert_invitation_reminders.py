"""expert invitation reminders: when an expert who had not answered was reminded

Revision ID: e5a9c3f17b42
Revises: b7e3d1f0a925
Create Date: 2026-11-30 10:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "e5a9c3f17b42"
down_revision = "b7e3d1f0a925"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_expert_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminded_at", hub.kernel.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_expert_invitations", schema=None) as batch_op:
        batch_op.drop_column("reminded_at")
