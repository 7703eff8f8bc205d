"""minutes bulletins: the bulletins that carried a meeting's signed minutes and their public part

Revision ID: 7c3e9a1f5b62
Revises: d8a52c4e7b13
Create Date: 2026-11-30 05:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7c3e9a1f5b62"
down_revision = "d8a52c4e7b13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("minutes_bulletin_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("public_bulletin_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_column("public_bulletin_id")
        batch_op.drop_column("minutes_bulletin_id")
