"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from flask import Flask
from flask_migrate import downgrade, upgrade

from hub.app import MIGRATIONS_DIR, create_core_app
from hub.config import Settings
from hub.extensions import db
from tests.conftest import ENCRYPTION_KEY

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


@pytest.mark.slow  # migrates a fresh database from nothing, twice at once
def test_two_processes_migrating_one_postgresql_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    server_url = os.environ.get("HUB_TEST_DATABASE_URL")
    if not server_url or not server_url.startswith("postgresql"):
        pytest.skip("runs in the PostgreSQL pass (HUB_TEST_DATABASE_URL); SQLite has one hub per instance")
    name = f"hub_migrate_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update(
            HUB_DATABASE_URL=url,
            HUB_SECRET_KEY="test",
            HUB_ENCRYPTION_KEY=ENCRYPTION_KEY,
            HUB_INSTANCE_PATH=str(tmp_path),
        )
        hub = str(Path(sys.executable).with_name("hub"))
        both = [
            subprocess.Popen(
                [hub, "db", "upgrade"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=300)[0].decode(errors="replace") for process in both]
        assert [process.returncode for process in both] == [0, 0], outputs
        # One of them ran every migration; the other waited, found the database at head and did nothing.
        ran = [output.count("Running upgrade") for output in outputs]
        assert sorted(ran)[0] == 0 and sorted(ran)[1] > 10, outputs
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert len(conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()) == 1
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
