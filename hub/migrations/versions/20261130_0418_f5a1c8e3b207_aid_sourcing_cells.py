"""aid sourcing cells: each registry entry's grid cell, the cells that hold entries, a new sourcing index

Revision ID: f5a1c8e3b207
Revises: a9d2e6b4c718
Create Date: 2026-11-30 15:14:00.000000

"""

import math

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f5a1c8e3b207"
down_revision = "a9d2e6b4c718"
branch_labels = None
depends_on = None

OLD_COLUMNS = [
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
NEW_COLUMNS = [
    "type_code",
    "status",
    "owner_city_id",
    "grade",
    "cell",
    "ux",
    "uy",
    "uz",
    "verified_at",
    "on_hand",
    "reserved",
    "deployed",
    "lat",
    "lon",
    "id",
]
NOTE_CELL = (
    "INSERT {verb} INTO aid_resource_cells (type_code, owner_city_id, grade, cell) "
    "VALUES (NEW.type_code, NEW.owner_city_id, coalesce(NEW.grade, 0), NEW.cell){tail}"
)
WATCHED = "type_code, owner_city_id, grade, cell"


def _cell_of(lat: float, lon: float) -> int:
    # As `hub.mutual_aid.rules.cell_of` today; a migration keeps its own copy of the rule.
    row = min(1799, max(0, math.floor((lat + 90.0) * 10)))
    col = min(3599, max(0, math.floor((lon + 180.0) * 10)))
    return row * 3600 + col


def _create_triggers() -> None:
    """Note the (type, city, grade, cell) of every entry written, in the writing transaction."""
    if op.get_bind().dialect.name == "postgresql":
        # ON CONFLICT DO NOTHING takes no lock on a committed row: writers of entries in a cell
        # already noted never wait for each other here.
        note = NOTE_CELL.format(verb="", tail=" ON CONFLICT DO NOTHING")
        op.execute(
            "CREATE FUNCTION aid_resources_note_cell() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {note}; RETURN NULL; END $$"
        )
        for name, event in (("insert", "INSERT"), ("update", f"UPDATE OF {WATCHED}")):
            op.execute(
                f"CREATE TRIGGER aid_resources_cell_on_{name} AFTER {event} ON aid_resources "
                "FOR EACH ROW EXECUTE FUNCTION aid_resources_note_cell()"
            )
    else:
        note = NOTE_CELL.format(verb="OR IGNORE", tail="")
        for name, event in (("insert", "INSERT"), ("update", f"UPDATE OF {WATCHED}")):
            op.execute(
                f"CREATE TRIGGER aid_resources_cell_on_{name} AFTER {event} ON aid_resources "
                f"BEGIN {note}; END"
            )


def _drop_triggers() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in ("insert", "update"):
        op.execute(
            f"DROP TRIGGER IF EXISTS aid_resources_cell_on_{name}"
            + (" ON aid_resources" if postgresql else "")
        )
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS aid_resources_note_cell()")


def upgrade() -> None:
    op.create_table(
        "aid_resource_cells",
        sa.Column("type_code", sa.String(length=64), nullable=False),
        sa.Column("owner_city_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("grade", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cell", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "type_code", "owner_city_id", "grade", "cell", name=op.f("pk_aid_resource_cells")
        ),
    )
    op.drop_index("ix_aid_resources_sourcing", table_name="aid_resources")
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cell", sa.Integer(), nullable=True))
    entries = sa.table(
        "aid_resources",
        sa.column("id", sa.Integer),
        sa.column("lat", sa.Float),
        sa.column("lon", sa.Float),
        sa.column("cell", sa.Integer),
    )
    connection = op.get_bind()
    rows = [
        {"b_id": row.id, "b_cell": _cell_of(row.lat, row.lon)}
        for row in connection.execute(sa.select(entries.c.id, entries.c.lat, entries.c.lon))
    ]
    if rows:
        connection.execute(
            entries.update().where(entries.c.id == sa.bindparam("b_id")).values(cell=sa.bindparam("b_cell")),
            rows,
        )
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        batch_op.alter_column("cell", existing_type=sa.Integer(), nullable=False)
    op.execute(
        "INSERT INTO aid_resource_cells (type_code, owner_city_id, grade, cell) "
        "SELECT DISTINCT type_code, owner_city_id, coalesce(grade, 0), cell FROM aid_resources"
    )
    # After the batch ALTER: on SQLite it rebuilds the table, and triggers go with the old one.
    _create_triggers()
    op.create_index("ix_aid_resources_sourcing", "aid_resources", NEW_COLUMNS, unique=False)


def downgrade() -> None:
    _drop_triggers()
    op.drop_index("ix_aid_resources_sourcing", table_name="aid_resources")
    with op.batch_alter_table("aid_resources", schema=None) as batch_op:
        batch_op.drop_column("cell")
    op.create_index("ix_aid_resources_sourcing", "aid_resources", OLD_COLUMNS, unique=False)
    op.drop_table("aid_resource_cells")
