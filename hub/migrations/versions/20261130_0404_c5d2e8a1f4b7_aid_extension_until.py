"""aid extensions: the end the requesting city asks for when it asks to keep a resource longer

Revision ID: c5d2e8a1f4b7
Revises: e41b7c2d9a63
Create Date: 2026-11-30 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "c5d2e8a1f4b7"
down_revision = "e41b7c2d9a63"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extension_until", hub.kernel.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.drop_column("extension_until")
