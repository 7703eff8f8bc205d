"""aid costs: the actual cost of a commitment, entered by the owner and signed by both cities

Revision ID: a7c3e5f19b42
Revises: 7c3e9a1f5b62
Create Date: 2026-11-30 04:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "a7c3e5f19b42"
down_revision = "7c3e9a1f5b62"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actual_cost", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("actual_cost_note", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("actual_cost_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("actual_cost_at", hub.kernel.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("owner_signed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("owner_signed_at", hub.kernel.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("requester_signed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("requester_signed_at", hub.kernel.types.UTCDateTime(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_aid_commitments_actual_cost_not_negative"),
            sa.text("actual_cost IS NULL OR actual_cost >= 0"),
        )
        batch_op.create_check_constraint(
            op.f("ck_aid_commitments_signed_cost_is_entered"),
            sa.text("actual_cost IS NOT NULL OR (owner_signed_at IS NULL AND requester_signed_at IS NULL)"),
        )
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.alter_column("actual_cost_note", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("aid_commitments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_aid_commitments_signed_cost_is_entered"), type_="check")
        batch_op.drop_constraint(op.f("ck_aid_commitments_actual_cost_not_negative"), type_="check")
        batch_op.drop_column("requester_signed_at")
        batch_op.drop_column("requester_signed_by")
        batch_op.drop_column("owner_signed_at")
        batch_op.drop_column("owner_signed_by")
        batch_op.drop_column("actual_cost_at")
        batch_op.drop_column("actual_cost_by")
        batch_op.drop_column("actual_cost_note")
        batch_op.drop_column("actual_cost")
