"""bridge states: whether each city-edge broker's bridge to the regional broker is up

Written from the edge brokers' retained notifications on `<root>/v1/<city>/bridge/state`.

Revision ID: a9d2e6b4c718
Revises: f3a8c1e7d260
Create Date: 2026-11-30 14:50:00.000000

"""

import sqlalchemy as sa
from alembic import op

import hub.kernel.types

# revision identifiers, used by Alembic.
revision = "a9d2e6b4c718"
down_revision = "f3a8c1e7d260"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bridge_states",
        sa.Column("city_id", sa.Integer(), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("changed_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", hub.kernel.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["city_id"], ["cities.id"], name=op.f("fk_bridge_states_city_id_cities")),
        sa.PrimaryKeyConstraint("city_id", name=op.f("pk_bridge_states")),
    )


def downgrade() -> None:
    op.drop_table("bridge_states")
