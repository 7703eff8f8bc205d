"""drill channels and corrective actions: the drill named by an exercise bulletin, and the
corrective actions a drill opens as action items with the plan they revise

Revision ID: c4d7e2a9b815
Revises: e1d5c3a9b7f4
Create Date: 2026-11-30 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "c4d7e2a9b815"
down_revision = "e1d5c3a9b7f4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exercise_ref", sa.String(length=64), nullable=True))
    op.create_table(
        "drill_corrective_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("action_item_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("objective", sa.String(length=16), nullable=True),
        sa.Column("created_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_item_id"],
            ["action_items.id"],
            name=op.f("fk_drill_corrective_actions_action_item_id_action_items"),
        ),
        sa.ForeignKeyConstraint(
            ["drill_id"],
            ["drills.id"],
            name=op.f("fk_drill_corrective_actions_drill_id_drills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_corrective_actions")),
        sa.UniqueConstraint("action_item_id", name=op.f("uq_drill_corrective_actions_action_item_id")),
    )
    with op.batch_alter_table("drill_corrective_actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_corrective_actions_drill_id"), ["drill_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drill_corrective_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_corrective_actions_drill_id"))
    op.drop_table("drill_corrective_actions")
    with op.batch_alter_table("bulletins", schema=None) as batch_op:
        batch_op.drop_column("exercise_ref")
