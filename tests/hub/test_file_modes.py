"""The instance folder and the SQLite files are readable by their owner only."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from hub.app import create_core_app
from hub.config import Settings
from hub.extensions import db


@pytest.fixture(autouse=True)
def ordinary_umask() -> Iterator[None]:
    """Files are created as under a usual login (umask 022), whatever the test runner's umask."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _write_and_look(instance: Path) -> dict[str, int]:
    """Write to the hub's database and, with the connection still open, return the files' modes."""
    app = create_core_app(
        Settings(secret_key="k", encryption_key=Fernet.generate_key().decode(), instance_path=instance)
    )
    with app.app_context():
        try:
            with db.engine.connect() as connection:
                connection.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
                connection.execute(text("INSERT INTO probe VALUES (1)"))
                connection.commit()
                files = ["hub.sqlite3", "hub.sqlite3-wal", "hub.sqlite3-shm"]
                assert all((instance / name).exists() for name in files)
                return {name: _mode(instance / name) for name in [".", *files]}
        finally:
            db.engine.dispose()


def test_a_new_instance_folder_and_database_are_private(tmp_path: Path) -> None:
    modes = _write_and_look(tmp_path / "instance")
    assert modes == {".": 0o700, "hub.sqlite3": 0o600, "hub.sqlite3-wal": 0o600, "hub.sqlite3-shm": 0o600}


def test_an_instance_made_before_is_made_private_at_start(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    # An older hub's database, its WAL left behind by a crash: created under umask 022.
    holder = sqlite3.connect(instance / "hub.sqlite3")
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE probe (x INTEGER)")
    holder.commit()
    try:
        assert _mode(instance / "hub.sqlite3") == 0o644
        modes = _write_and_look(instance)
    finally:
        holder.close()
    assert modes == {".": 0o700, "hub.sqlite3": 0o600, "hub.sqlite3-wal": 0o600, "hub.sqlite3-shm": 0o600}
