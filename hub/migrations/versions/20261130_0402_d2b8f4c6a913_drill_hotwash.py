"""drill hot wash: each player's short form right after ENDEX

Revision ID: d2b8f4c6a913
Revises: c4d7e2a9b815
Create Date: 2026-11-30 07:50:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "d2b8f4c6a913"
down_revision = "c4d7e2a9b815"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drill_hotwash",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("self_rating", sa.Integer(), nullable=False),
        sa.Column("went_well", sa.Text(), nullable=False),
        sa.Column("to_improve", sa.Text(), nullable=False),
        sa.Column("created_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_drill_hotwash_city_id_cities")),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_hotwash_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_drill_hotwash_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_hotwash")),
        sa.UniqueConstraint("drill_id", "user_id", name=op.f("uq_drill_hotwash_drill_id_user_id")),
    )
    with op.batch_alter_table("drill_hotwash", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_hotwash_drill_id"), ["drill_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drill_hotwash", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_hotwash_drill_id"))
    op.drop_table("drill_hotwash")
