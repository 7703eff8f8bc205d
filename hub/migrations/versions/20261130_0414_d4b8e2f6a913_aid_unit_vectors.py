"""aid unit vectors: each registry entry's place on the unit sphere, and the sourcing index over it

Revision ID: d4b8e2f6a913
Revises: c3f8a2d6e517
Create Date: 2026-11-30 11:45:00.000000

"""

import math

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d4b8e2f6a913"
down_revision = "c3f8a2d6e517"
branch_labels = None
depends_on = None

OLD_COLUMNS = [
    "type_code",
    "status",
    "owner_city_id",
    "grade",
    "verified_at",
    "lat",
    "lon",
    "on_hand",
    "reserved",
    "deployed",
]
NEW_COLUMNS = [
    "type_code",
    "status",
    "owner_city_id",
    "grade",
    "lat",
    "lon",
    "ux",
    "uy",
    "uz",
    "verified_at",
    "on_hand",
    "reserved",
    "deployed",
    "id",
]


def _unit_vector(lat: float, lon: float) -> tuple[float, float, float]:
    # As `hub.mutual_aid.rules.unit_vector` today; a migration keeps its own copy of the rule.
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def upgrade() -> None:
    op.drop_index("ix_aid_resources_sourcing", table_name="aid_resources")
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        for name in ("ux", "uy", "uz"):
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    entries = sa.table(
        "aid_resources",
        sa.column("id", sa.Integer),
        sa.column("lat", sa.Float),
        sa.column("lon", sa.Float),
        sa.column("ux", sa.Float),
        sa.column("uy", sa.Float),
        sa.column("uz", sa.Float),
    )
    connection = op.get_bind()
    rows = [
        dict(zip(("b_id", "b_ux", "b_uy", "b_uz"), (row.id, *_unit_vector(row.lat, row.lon)), strict=True))
        for row in connection.execute(sa.select(entries.c.id, entries.c.lat, entries.c.lon))
    ]
    if rows:
        connection.execute(
            entries.update()
            .where(entries.c.id == sa.bindparam("b_id"))
            .values(ux=sa.bindparam("b_ux"), uy=sa.bindparam("b_uy"), uz=sa.bindparam("b_uz")),
            rows,
        )
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        for name in ("ux", "uy", "uz"):
            batch_op.alter_column(name, existing_type=sa.Float(), nullable=False)
    op.create_index("ix_aid_resources_sourcing", "aid_resources", NEW_COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_aid_resources_sourcing", table_name="aid_resources")
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        for name in ("uz", "uy", "ux"):
            batch_op.drop_column(name)
    op.create_index("ix_aid_resources_sourcing", "aid_resources", OLD_COLUMNS, unique=False)
