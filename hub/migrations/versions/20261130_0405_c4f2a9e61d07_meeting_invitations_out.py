"""meeting invitations out: to the cities' platforms (iTIP) and to the registry's experts

Revision ID: c4f2a9e61d07
Revises: c5d2e8a1f4b7
Create Date: 2026-11-30 07:01:00.000000

"""

import uuid

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "c4f2a9e61d07"
down_revision = "c5d2e8a1f4b7"
branch_labels = None
depends_on = None


def _platform_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("platform_sequence", sa.Integer(), nullable=True),
        sa.Column("platform_delivered_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("platform_ref", sa.String(length=128), nullable=True),
        sa.Column("platform_error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("meeting_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_id", sa.Uuid(), nullable=True))
        for column in _platform_columns():
            batch_op.add_column(column)
    # Invitations made before have no wire id yet; each gets its own.
    connection = op.get_bind()
    invitations = sa.table(
        "meeting_invitations", sa.column("id", sa.Integer()), sa.column("public_id", sa.Uuid())
    )
    for (invitation_id,) in connection.execute(sa.select(invitations.c.id)).all():
        connection.execute(
            invitations.update().where(invitations.c.id == invitation_id).values(public_id=uuid.uuid4())
        )
    with op.batch_alter_table("meeting_invitations", schema=None) as batch_op:
        batch_op.alter_column("public_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_meeting_invitations_public_id"), ["public_id"])

    op.create_table(
        "meeting_expert_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("speciality", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=False),
        sa.Column("delivered_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=True),
        sa.Column("delegate_name", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("answered_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        *_platform_columns(),
        sa.ForeignKeyConstraint(
            ["city_id"], ["cities.id"], name=op.f("fk_meeting_expert_invitations_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_expert_invitations_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_expert_invitations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_meeting_expert_invitations_public_id")),
        sa.UniqueConstraint(
            "meeting_id", "resource_id", name=op.f("uq_meeting_expert_invitations_meeting_id_resource_id")
        ),
    )
    with op.batch_alter_table("meeting_expert_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_meeting_expert_invitations_city_id"), ["city_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_meeting_expert_invitations_meeting_id"), ["meeting_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("meeting_expert_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_meeting_expert_invitations_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_meeting_expert_invitations_city_id"))
    op.drop_table("meeting_expert_invitations")
    with op.batch_alter_table("meeting_invitations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_meeting_invitations_public_id"), type_="unique")
        batch_op.drop_column("platform_error")
        batch_op.drop_column("platform_ref")
        batch_op.drop_column("platform_delivered_at")
        batch_op.drop_column("platform_sequence")
        batch_op.drop_column("public_id")
