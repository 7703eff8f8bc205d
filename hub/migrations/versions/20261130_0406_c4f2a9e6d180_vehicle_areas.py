"""vehicle areas: the member city a vehicle counts as in, and its crossings between cities;
when a vehicle first answered a command

Revision ID: c4f2a9e6d180
Revises: c4f2a9e61d07
Create Date: 2026-11-30 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "c4f2a9e6d180"
down_revision = "c4f2a9e61d07"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area_city_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("area_since", hub.kernel.types.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_vehicles_area_city_id"), ["area_city_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_vehicles_area_city_id_cities"), "cities", ["area_city_id"], ["id"]
        )
    with op.batch_alter_table("vehicle_commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acked_at", hub.kernel.types.UTCDateTime(), nullable=True))
    op.create_table(
        "vehicle_crossings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=False),
        sa.Column("from_city_id", sa.Integer(), nullable=True),
        sa.Column("to_city_id", sa.Integer(), nullable=True),
        sa.Column("at", hub.kernel.types.UTCDateTime(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_city_id"], ["cities.id"], name=op.f("fk_vehicle_crossings_from_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["to_city_id"], ["cities.id"], name=op.f("fk_vehicle_crossings_to_city_id_cities")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.id"],
            name=op.f("fk_vehicle_crossings_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicle_crossings")),
    )
    with op.batch_alter_table("vehicle_crossings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vehicle_crossings_to_city_id"), ["to_city_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_vehicle_crossings_vehicle_id"), ["vehicle_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vehicle_crossings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vehicle_crossings_vehicle_id"))
        batch_op.drop_index(batch_op.f("ix_vehicle_crossings_to_city_id"))
    op.drop_table("vehicle_crossings")
    with op.batch_alter_table("vehicle_commands", schema=None) as batch_op:
        batch_op.drop_column("acked_at")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_vehicles_area_city_id_cities"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_vehicles_area_city_id"))
        batch_op.drop_column("area_since")
        batch_op.drop_column("area_city_id")
