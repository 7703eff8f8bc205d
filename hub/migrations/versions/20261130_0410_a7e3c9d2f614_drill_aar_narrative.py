"""drill AAR narrative: the evaluators' revisions of the after-action report, and its finalisation

Revision ID: a7e3c9d2f614
Revises: a7d3e5b9c214
Create Date: 2026-11-30 10:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "a7e3c9d2f614"
down_revision = "a7d3e5b9c214"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("aar_final_revision", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("aar_finalised_at", hub.kernel.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("aar_finalised_by", sa.String(length=64), nullable=True))
    op.create_table(
        "drill_aar_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_drill_aar_revisions_author_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["city_id"], ["cities.id"], name=op.f("fk_drill_aar_revisions_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["drill_id"],
            ["drills.id"],
            name=op.f("fk_drill_aar_revisions_drill_id_drills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_aar_revisions")),
        sa.UniqueConstraint("drill_id", "number", name=op.f("uq_drill_aar_revisions_drill_id_number")),
    )
    with op.batch_alter_table("drill_aar_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_aar_revisions_drill_id"), ["drill_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drill_aar_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_aar_revisions_drill_id"))
    op.drop_table("drill_aar_revisions")
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_column("aar_finalised_by")
        batch_op.drop_column("aar_finalised_at")
        batch_op.drop_column("aar_final_revision")
