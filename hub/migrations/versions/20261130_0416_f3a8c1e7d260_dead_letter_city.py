"""dead letter city: a dead letter belongs to the city it came from or for, when that can be told

The letters already kept under a city's MQTT subtree (`<root>/v1/<city>/…`) are given that city;
the others (partner letters before this change among them) stay the administrators' alone.

Revision ID: f3a8c1e7d260
Revises: e2c7a9d4f135
Create Date: 2026-11-30 14:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3a8c1e7d260"
down_revision = "e2c7a9d4f135"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("city_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_dead_letters_city_id"), ["city_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_dead_letters_city_id_cities"), "cities", ["city_id"], ["id"]
        )
    connection = op.get_bind()
    cities: dict[str, int] = {
        slug: city_id for slug, city_id in connection.execute(sa.text("SELECT slug, id FROM cities"))
    }
    letters = connection.execute(sa.text("SELECT id, topic FROM dead_letters WHERE source = 'mqtt'")).all()
    for letter_id, topic in letters:
        parts = topic.split("/")
        if len(parts) >= 3 and parts[1] == "v1" and parts[2] in cities:
            connection.execute(
                sa.text("UPDATE dead_letters SET city_id = :city WHERE id = :id"),
                {"city": cities[parts[2]], "id": letter_id},
            )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_dead_letters_city_id_cities"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_dead_letters_city_id"))
        batch_op.drop_column("city_id")
