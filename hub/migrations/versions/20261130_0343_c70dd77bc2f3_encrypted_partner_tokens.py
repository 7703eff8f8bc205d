"""partner platforms' tokens stored encrypted with HUB_ENCRYPTION_KEY

Revision ID: c70dd77bc2f3
Revises: b5e9f3da754f
Create Date: 2026-11-30 03:55:00

The column becomes `outbound_token_encrypted` (Text: a Fernet token is longer than what it
holds), and the tokens already stored are encrypted here, in the same transaction, with the
key the hub that runs the upgrade was started with (HUB_ENCRYPTION_KEY, or the demo's own).
Without a key, an upgrade that finds stored tokens stops and changes nothing.
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, MultiFernet
from flask import current_app

# revision identifiers, used by Alembic.
revision = "c70dd77bc2f3"
down_revision = "b5e9f3da754f"
branch_labels = None
depends_on = None

platforms = sa.table(
    "partner_platforms",
    sa.column("id", sa.Integer),
    sa.column("outbound_token_encrypted", sa.Text),
)


def _fernet() -> MultiFernet:
    keys = current_app.extensions["hub_settings"].encryption_key or ""
    parts = [key.strip() for key in keys.split(",") if key.strip()]
    if not parts:
        raise RuntimeError(
            "partner platforms hold tokens, and HUB_ENCRYPTION_KEY is not set: "
            "set it and run the upgrade again to store them encrypted"
        )
    return MultiFernet([Fernet(key) for key in parts])


def _recode(change: Callable[[MultiFernet, str], str]) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(platforms.c.id, platforms.c.outbound_token_encrypted)).all()
    if not rows:
        return
    fernet = _fernet()
    for row_id, value in rows:
        connection.execute(
            platforms.update()
            .where(platforms.c.id == row_id)
            .values(outbound_token_encrypted=change(fernet, value))
        )


def upgrade() -> None:
    with op.batch_alter_table("partner_platforms", schema=None) as batch_op:
        batch_op.alter_column(
            "outbound_token",
            new_column_name="outbound_token_encrypted",
            existing_type=sa.String(length=200),
            type_=sa.Text(),
            existing_nullable=False,
        )
    _recode(lambda fernet, plain: fernet.encrypt(plain.encode("utf-8")).decode("ascii"))


def downgrade() -> None:
    _recode(lambda fernet, stored: fernet.decrypt(stored.encode("ascii")).decode("utf-8"))
    with op.batch_alter_table("partner_platforms", schema=None) as batch_op:
        batch_op.alter_column(
            "outbound_token_encrypted",
            new_column_name="outbound_token",
            existing_type=sa.Text(),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
