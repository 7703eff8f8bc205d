"""a person's signature apart from the platform's delivery; incident updates for the cities told;
the duty roster and the contact directory

Revision ID: e1d5c3a9b7f4
Revises: a7c3e5f19b42
Create Date: 2026-11-30 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "e1d5c3a9b7f4"
down_revision = "a7c3e5f19b42"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulletin_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_via", sa.String(length=16), nullable=True))
    op.create_table(
        "incident_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_updates_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_updates")),
    )
    with op.batch_alter_table("incident_updates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_updates_incident_id"), ["incident_id"], unique=False)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("update_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_update_id"), ["update_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_update_id_incident_updates"),
            "incident_updates",
            ["update_id"],
            ["id"],
            ondelete="CASCADE",
        )

    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shift", sa.String(length=8), nullable=False),
        sa.Column("officer", sa.String(length=64), nullable=False),
        sa.Column("officer_phone", sa.String(length=32), nullable=False),
        sa.Column("leader", sa.String(length=64), nullable=False),
        sa.Column("leader_phone", sa.String(length=32), nullable=False),
        sa.Column("updated_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_duty_shifts_city_id_cities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_shifts")),
        sa.UniqueConstraint("city_id", "day", "shift", name=op.f("uq_duty_shifts_city_id_day_shift")),
    )
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_duty_shifts_city_id"), ["city_id"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("mobile", sa.String(length=32), nullable=False),
        sa.Column("updated_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_contacts_city_id_cities")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("city_id", "kind", "name", name=op.f("uq_contacts_city_id_kind_name")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contacts_city_id"), ["city_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_city_id"))
    op.drop_table("contacts")
    with op.batch_alter_table("duty_shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duty_shifts_city_id"))
    op.drop_table("duty_shifts")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_notifications_update_id_incident_updates"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_notifications_update_id"))
        batch_op.drop_column("update_id")
    with op.batch_alter_table("incident_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_updates_incident_id"))
    op.drop_table("incident_updates")
    with op.batch_alter_table("bulletin_recipients", schema=None) as batch_op:
        batch_op.drop_column("signed_via")
