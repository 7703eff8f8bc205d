"""a person's signature apart from the platform's delivery

Revision ID: e1d5c3a9b7f4
Revises: a7c3e5f19b42
Create Date: 2026-11-30 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e1d5c3a9b7f4"
down_revision = "a7c3e5f19b42"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletin_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_via", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulletin_recipients", schema=None) as batch_op:
        batch_op.drop_column("signed_via")
