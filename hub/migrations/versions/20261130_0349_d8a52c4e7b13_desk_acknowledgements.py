"""desk acknowledgements: who saw an urgent item on a city's desk, and when

Revision ID: d8a52c4e7b13
Revises: 5b8e3c1d7a24
Create Date: 2026-11-30 04:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "d8a52c4e7b13"
down_revision = "5b8e3c1d7a24"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=False),
        sa.Column("acknowledged_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["city_id"], ["cities.id"], name=op.f("fk_desk_acknowledgements_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_desk_acknowledgements_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_acknowledgements")),
        sa.UniqueConstraint("city_id", "item_key", name=op.f("uq_desk_acknowledgements_city_id_item_key")),
    )
    with op.batch_alter_table("desk_acknowledgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_desk_acknowledgements_city_id"), ["city_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("desk_acknowledgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_acknowledgements_city_id"))
    op.drop_table("desk_acknowledgements")
