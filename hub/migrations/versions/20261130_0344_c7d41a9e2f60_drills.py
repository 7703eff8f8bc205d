"""joint drills: plans, injects, responses, observations; exercise flag on vehicle commands

Revision ID: c7d41a9e2f60
Revises: c70dd77bc2f3
Create Date: 2026-11-30 03:49:23.774452

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "c7d41a9e2f60"
down_revision = "c70dd77bc2f3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("drill_type", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("controlling_city_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("time_scale", sa.Float(), nullable=False),
        sa.Column("startex", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("endex", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_total_s", sa.Float(), nullable=False),
        sa.Column("ended_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("aar", sa.JSON(), nullable=True),
        sa.Column("aar_drafted_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["controlling_city_id"], ["cities.id"], name=op.f("fk_drills_controlling_city_id_cities")
        ),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_drills_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drills")),
        sa.UniqueConstraint("public_id", name=op.f("uq_drills_public_id")),
    )
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_drills_controlling_city_id"), ["controlling_city_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_drills_startex"), ["startex"], unique=False)
        batch_op.create_index(batch_op.f("ix_drills_status"), ["status"], unique=False)

    op.create_table(
        "drill_injects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("offset_s", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("vehicle", sa.String(length=64), nullable=True),
        sa.Column("linkage_system", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("expected_action", sa.String(length=32), nullable=True),
        sa.Column("expected_within_s", sa.Integer(), nullable=True),
        sa.Column("objective", sa.String(length=16), nullable=True),
        sa.Column("critical_task", sa.String(length=16), nullable=True),
        sa.Column("contingency_of", sa.Integer(), nullable=True),
        sa.Column("controller", sa.String(length=64), nullable=True),
        sa.Column("evaluator_notes", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("delivered_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("skip_reason", sa.String(length=500), nullable=True),
        sa.Column("flagged_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery_ref", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_drill_injects_city_id_cities")),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_injects_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_injects")),
        sa.UniqueConstraint("drill_id", "number", name=op.f("uq_drill_injects_drill_id_number")),
    )
    with op.batch_alter_table("drill_injects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_injects_city_id"), ["city_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_drill_injects_drill_id"), ["drill_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_drill_injects_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_drill_injects_state"), ["state"], unique=False)

    op.create_table(
        "drill_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("evaluator", sa.String(length=64), nullable=False),
        sa.Column("evaluator_user_id", sa.Integer(), nullable=True),
        sa.Column("objective", sa.String(length=16), nullable=True),
        sa.Column("critical_task", sa.String(length=16), nullable=True),
        sa.Column("rating", sa.String(length=1), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("observed_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["drill_id"],
            ["drills.id"],
            name=op.f("fk_drill_observations_drill_id_drills"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evaluator_user_id"], ["users.id"], name=op.f("fk_drill_observations_evaluator_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_observations")),
    )
    with op.batch_alter_table("drill_observations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_observations_drill_id"), ["drill_id"], unique=False)

    op.create_table(
        "drill_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("inject_id", sa.Integer(), nullable=True),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("ref", sa.String(length=80), nullable=True),
        sa.Column("at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_drill_responses_city_id_cities")),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_responses_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["inject_id"],
            ["drill_injects.id"],
            name=op.f("fk_drill_responses_inject_id_drill_injects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_responses")),
    )
    with op.batch_alter_table("drill_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_responses_drill_id"), ["drill_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_drill_responses_inject_id"), ["inject_id"], unique=False)

    with op.batch_alter_table("vehicle_commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exercise", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("vehicle_commands", schema=None) as batch_op:
        batch_op.drop_column("exercise")

    with op.batch_alter_table("drill_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_responses_inject_id"))
        batch_op.drop_index(batch_op.f("ix_drill_responses_drill_id"))

    op.drop_table("drill_responses")
    with op.batch_alter_table("drill_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_observations_drill_id"))

    op.drop_table("drill_observations")
    with op.batch_alter_table("drill_injects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_injects_state"))
        batch_op.drop_index(batch_op.f("ix_drill_injects_due_at"))
        batch_op.drop_index(batch_op.f("ix_drill_injects_drill_id"))
        batch_op.drop_index(batch_op.f("ix_drill_injects_city_id"))

    op.drop_table("drill_injects")
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drills_status"))
        batch_op.drop_index(batch_op.f("ix_drills_startex"))
        batch_op.drop_index(batch_op.f("ix_drills_controlling_city_id"))

    op.drop_table("drills")
