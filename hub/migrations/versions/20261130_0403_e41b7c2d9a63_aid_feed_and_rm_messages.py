"""aid feed and EDXL-RM messages: where a registry entry comes from, and each imported message once

Also an index on `aid_resources.verified_at`, for the reminders to verify entries again.

`aid_resources.source` tells entries kept by a city's platform feed ("feed") from those entered
in the hub ("hub"); `aid_rm_messages` keeps every imported EDXL-RM message by its sender and
MessageID, so that a message sent again is applied once.

Revision ID: e41b7c2d9a63
Revises: d2b8f4c6a913
Create Date: 2026-11-30 07:05:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "e41b7c2d9a63"
down_revision = "d2b8f4c6a913"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="hub"))
        # The upkeep timer looks for entries not verified lately on every tick.
        batch_op.create_index(batch_op.f("ix_aid_resources_verified_at"), ["verified_at"], unique=False)

    op.create_table(
        "aid_rm_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("commitment_id", sa.Integer(), nullable=True),
        sa.Column("received_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_aid_rm_messages_city_id_cities")),
        sa.ForeignKeyConstraint(
            ["commitment_id"],
            ["aid_commitments.id"],
            name=op.f("fk_aid_rm_messages_commitment_id_aid_commitments"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["aid_requests.id"], name=op.f("fk_aid_rm_messages_request_id_aid_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_rm_messages")),
        sa.UniqueConstraint("city_id", "message_id", name=op.f("uq_aid_rm_messages_city_id_message_id")),
    )
    with op.batch_alter_table("aid_rm_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aid_rm_messages_city_id"), ["city_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("aid_rm_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aid_rm_messages_city_id"))
    op.drop_table("aid_rm_messages")
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aid_resources_verified_at"))
        batch_op.drop_column("source")
