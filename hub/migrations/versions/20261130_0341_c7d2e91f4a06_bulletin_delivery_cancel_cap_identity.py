"""bulletin redelivery back-off, cancellation deliveries and the CAP identity of a warning

Revision ID: c7d2e91f4a06
Revises: 3b7e5c91d2a4
Create Date: 2026-11-30 03:40:00

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "c7d2e91f4a06"
down_revision = "3b7e5c91d2a4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletin_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redeliveries", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("next_attempt_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("given_up_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cancel_delivered_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cap_sender", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("cap_identifier", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("cap_sent", hub.kernel.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_bulletins_cap", ["cap_sender", "cap_identifier", "cap_sent"])


def downgrade() -> None:
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.drop_constraint("uq_bulletins_cap", type_="unique")
        batch_op.drop_column("cap_sent")
        batch_op.drop_column("cap_identifier")
        batch_op.drop_column("cap_sender")
    with op.batch_alter_table("bulletin_recipients", schema=None) as batch_op:
        batch_op.drop_column("cancel_delivered_at")
        batch_op.drop_column("given_up_at")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("redeliveries")
