"""list filter indexes: the audit trail by action, incidents and bulletins by the person who
recorded or issued them

Revision ID: a7e3d19c5b42
Revises: b7e3d1a5c942
Create Date: 2026-11-30 10:30:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "a7e3d19c5b42"
down_revision = "b7e3d1a5c942"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE INDEX, no batch: SQLite would otherwise rebuild audit_entries, and with it
    # drop the triggers that keep the trail append-only.
    op.create_index(op.f("ix_audit_entries_action"), "audit_entries", ["action"], unique=False)
    op.create_index(op.f("ix_incidents_created_by_id"), "incidents", ["created_by_id"], unique=False)
    op.create_index(op.f("ix_bulletins_issued_by_id"), "bulletins", ["issued_by_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bulletins_issued_by_id"), table_name="bulletins")
    op.drop_index(op.f("ix_incidents_created_by_id"), table_name="incidents")
    op.drop_index(op.f("ix_audit_entries_action"), table_name="audit_entries")
