"""the CAP addresses of a warning, and the CAP Updates and Cancels applied to it

Revision ID: e4a7c2d9f813
Revises: c7d41a9e2f60
Create Date: 2026-11-30 04:10:00

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "e4a7c2d9f813"
down_revision = "c7d41a9e2f60"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cap_addresses", sa.Text(), nullable=True))
    op.create_table(
        "bulletin_cap_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("cap_sender", sa.String(length=200), nullable=False),
        sa.Column("cap_identifier", sa.String(length=200), nullable=False),
        sa.Column("cap_sent", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bulletin_id"], ["bulletins.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "bulletin_id", "cap_sender", "cap_identifier", "cap_sent", name="uq_bulletin_cap_messages"
        ),
    )
    with op.batch_alter_table("bulletin_cap_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bulletin_cap_messages_bulletin_id"), ["bulletin_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("bulletin_cap_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulletin_cap_messages_bulletin_id"))
    op.drop_table("bulletin_cap_messages")
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.drop_column("cap_addresses")
