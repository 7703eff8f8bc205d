"""desk indexes: the desks and their change detector read what is open, not a year of the rest

Partial indexes on the open incidents (by reported_at), the unread notices and the unsigned
receipts (by city), an index on incidents.updated_at (its newest), and no index on the exercise
flag (false for nearly every row: it only misled SQLite's planner, which took it for the open
list and read every incident).

Revision ID: e2c7a9d4f135
Revises: d4b8e2f6a913
Create Date: 2026-11-30 14:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e2c7a9d4f135"
down_revision = "d4b8e2f6a913"
branch_labels = None
depends_on = None

OPEN = sa.text("status != 'closed'")
UNREAD = sa.text("read_at IS NULL")
UNSIGNED = sa.text("receipt_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_incidents_open", "incidents", ["reported_at"], sqlite_where=OPEN, postgresql_where=OPEN
    )
    op.create_index(op.f("ix_incidents_updated_at"), "incidents", ["updated_at"])
    op.create_index(
        "ix_notifications_unread", "notifications", ["city_id"], sqlite_where=UNREAD, postgresql_where=UNREAD
    )
    op.create_index(
        "ix_bulletin_recipients_unsigned",
        "bulletin_recipients",
        ["city_id"],
        sqlite_where=UNSIGNED,
        postgresql_where=UNSIGNED,
    )
    op.drop_index("ix_incidents_exercise", table_name="incidents")


def downgrade() -> None:
    op.create_index("ix_incidents_exercise", "incidents", ["exercise"])
    op.drop_index("ix_bulletin_recipients_unsigned", table_name="bulletin_recipients")
    op.drop_index("ix_notifications_unread", table_name="notifications")
    op.drop_index(op.f("ix_incidents_updated_at"), table_name="incidents")
    op.drop_index("ix_incidents_open", table_name="incidents")
