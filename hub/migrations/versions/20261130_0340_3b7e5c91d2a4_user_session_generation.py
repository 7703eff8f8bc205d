"""a session generation per user, so log-out and password changes end sessions on the server

Revision ID: 3b7e5c91d2a4
Revises: a41c7e2d9b10
Create Date: 2026-11-30 03:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "3b7e5c91d2a4"
down_revision = "a41c7e2d9b10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
