"""aid sourcing: an index that covers the ranking's query of registry entries

Revision ID: a7d3e5b9c214
Revises: e5a9c3f17b42
Create Date: 2026-11-30 10:30:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "a7d3e5b9c214"
down_revision = "e5a9c3f17b42"
branch_labels = None
depends_on = None

COLUMNS = [
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


def upgrade() -> None:
    op.create_index("ix_aid_resources_sourcing", "aid_resources", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_aid_resources_sourcing", table_name="aid_resources")
