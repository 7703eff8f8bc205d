"""incident story: the fields of a standard incident report on incidents and their reports, the
place of a follow-up report, attachments, who read a notice, the incident a bulletin or a
vehicle command is about, and the areas watched for an incident

Revision ID: b7e3d1a5c942
Revises: a7e3c9d2f614
Create Date: 2026-11-30 10:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "b7e3d1a5c942"
down_revision = "a7e3c9d2f614"
branch_labels = None
depends_on = None

_TEXTS = ("extent", "trend", "measures")
_COUNTS = ("deaths", "injured", "missing")


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("nature", sa.Text(), server_default="", nullable=False))
        for name in _TEXTS:
            batch_op.add_column(sa.Column(name, sa.Text(), server_default="", nullable=False))
        for name in _COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        for name in _TEXTS:
            batch_op.add_column(sa.Column(name, sa.Text(), server_default="", nullable=False))
        for name in _COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("longitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("location", sa.String(length=200), server_default="", nullable=False))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("read_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_read_by_id_users"), "users", ["read_by_id"], ["id"]
        )
    for table in ("bulletins", "vehicle_commands"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("incident_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_incident_id"), ["incident_id"], unique=False)
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_incident_id_incidents"), "incidents", ["incident_id"], ["id"]
            )
    op.create_table(
        "incident_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_name", sa.String(length=80), nullable=False),
        sa.Column("uploaded_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["city_id"], ["cities.id"], name=op.f("fk_incident_attachments_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_attachments_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_incident_attachments_uploaded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_attachments")),
        sa.UniqueConstraint("storage_name", name=op.f("uq_incident_attachments_storage_name")),
    )
    with op.batch_alter_table("incident_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_attachments_incident_id"), ["incident_id"], unique=False
        )
    _watch_areas()


def _watch_areas() -> None:
    op.create_table(
        "watch_areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Float(), nullable=False),
        sa.Column("created_at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", hub.kernel.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_watch_areas_city_id_cities")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_watch_areas_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_watch_areas_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_areas")),
    )
    with op.batch_alter_table("watch_areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watch_areas_city_id"), ["city_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_watch_areas_ended_at"), ["ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_watch_areas_incident_id"), ["incident_id"], unique=False)
    op.create_table(
        "watch_area_presence",
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("since", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["watch_areas.id"],
            name=op.f("fk_watch_area_presence_area_id_watch_areas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_watch_area_presence_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("area_id", "vehicle_id", name=op.f("pk_watch_area_presence")),
    )
    op.create_table(
        "watch_area_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["watch_areas.id"],
            name=op.f("fk_watch_area_events_area_id_watch_areas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_watch_area_events_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watch_area_events")),
    )
    with op.batch_alter_table("watch_area_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_watch_area_events_area_id"), ["area_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_watch_area_events_at"), ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("watch_area_events")
    op.drop_table("watch_area_presence")
    op.drop_table("watch_areas")
    with op.batch_alter_table("incident_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_attachments_incident_id"))
    op.drop_table("incident_attachments")
    for table in ("vehicle_commands", "bulletins"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f"fk_{table}_incident_id_incidents"), type_="foreignkey")
            batch_op.drop_index(batch_op.f(f"ix_{table}_incident_id"))
            batch_op.drop_column("incident_id")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notifications_read_by_id_users"), type_="foreignkey")
        batch_op.drop_column("read_by_id")
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        for name in ("location", "longitude", "latitude", *_COUNTS, *_TEXTS):
            batch_op.drop_column(name)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name in (*_COUNTS, *_TEXTS, "nature", "source"):
            batch_op.drop_column(name)
