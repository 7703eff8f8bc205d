"""mutual aid: the cities asked in each ring of a request, and when a hold began and left

Revision ID: e4a1c8b2d7f3
Revises: fef1b2a787a0
Create Date: 2026-11-30 04:05:00

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "e4a1c8b2d7f3"
down_revision = "fef1b2a787a0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aid_asks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("ring", sa.Integer(), nullable=False),
        sa.Column("asked_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_aid_asks_city_id_cities")),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["aid_requests.id"],
            name=op.f("fk_aid_asks_request_id_aid_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_asks")),
        sa.UniqueConstraint("request_id", "city_id", name=op.f("uq_aid_asks_request_id_city_id")),
    )
    with op.batch_alter_table("aid_asks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aid_asks_city_id"), ["city_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_aid_asks_deadline"), ["deadline"], unique=False)
        batch_op.create_index(batch_op.f("ix_aid_asks_request_id"), ["request_id"], unique=False)
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("accepted_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("dispatched_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("accepted_at")
    with op.batch_alter_table("aid_asks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aid_asks_request_id"))
        batch_op.drop_index(batch_op.f("ix_aid_asks_deadline"))
        batch_op.drop_index(batch_op.f("ix_aid_asks_city_id"))
    op.drop_table("aid_asks")
