"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import downgrade, upgrade

from hub.app import MIGRATIONS_DIR, create_core_app
from hub.config import Settings
from hub.extensions import db

BEFORE_ENCRYPTION = "3b7e5c91d2a4"


def test_migrated_schema_matches_the_models(app: Flask) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "a model changed without a migration (flask db migrate)"


def test_the_migration_encrypts_the_partner_tokens_already_stored(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(secret_key="k", encryption_key=key, instance_path=tmp_path / "instance")
    app = create_core_app(settings)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision=BEFORE_ENCRYPTION)
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO cities (id, slug, division_code, name_zh, name_en, province_zh, "
                    "province_en, longitude, latitude) VALUES (1, 'heze', '371700', '菏泽', 'Heze', "
                    "'山东', 'Shandong', 115.48, 35.23)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO partner_platforms (city_id, base_url, outbound_token, enabled, "
                    "sync_interval_seconds, created_at) VALUES (1, 'http://heze', 'plain-token', 1, 60, "
                    "'2026-11-29 00:00:00')"
                )
            )
        upgrade(directory=str(MIGRATIONS_DIR))
        with db.engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT outbound_token_encrypted FROM partner_platforms")
            ).scalar_one()
        assert "plain-token" not in stored
        assert Fernet(key).decrypt(stored.encode()).decode() == "plain-token"

        downgrade(directory=str(MIGRATIONS_DIR), revision=BEFORE_ENCRYPTION)
        with db.engine.connect() as connection:
            plain = connection.execute(sa.text("SELECT outbound_token FROM partner_platforms")).scalar_one()
        assert plain == "plain-token"
        db.session.remove()
        db.engine.dispose()
