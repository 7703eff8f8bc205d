"""The hub's core Flask application: database and migrations, no HTTP routes."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection

from hub.capabilities import load_models
from hub.config import Settings
from hub.extensions import db, migrate

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def create_core_app(settings: Settings, import_name: str = "hub") -> Flask:
    """Build a Flask app with the database bound; web and flows add to it.

    The instance folder (keys, the broker's password file, the SQLite database) is made readable
    by its owner only, and so is a SQLite database file the hub is about to create.
    """
    _private_folder(settings.instance_path)
    _private_sqlite_file(settings.sqlalchemy_url)
    app = Flask(import_name, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.sqlalchemy_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.sqlalchemy_url),
        HUB_SETTINGS=settings,
    )
    app.extensions["hub_settings"] = settings
    load_models()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    return app


def _engine_options(url: str) -> dict[str, object]:
    if url.startswith("sqlite"):
        # Flask's threads and the flow threads share the file; wait for the lock instead of failing.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True}


def _private_folder(path: Path) -> None:
    """Create a folder only its owner can enter, and take others' access away if it has it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path, 0o700)


def _private_sqlite_file(url: str) -> None:
    """Create an empty SQLite database file readable by its owner only, before the driver does.

    SQLite gives the -wal and -shm files it creates later the database file's permissions.
    """
    path = _sqlite_path(make_url(url).database) if url.startswith("sqlite") else None
    if path is None or path.exists() or not path.parent.is_dir():
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_path(database: str | None) -> Path | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _owner_only(path: Path, mode: int) -> None:
    """Give a file or folder `mode` when it grants anything to group or others."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(mode)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot make %s readable by its owner only: %s", path, exc)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: DBAPIConnection, connection_record: object) -> None:
    """Put SQLite in WAL mode with foreign keys on, for every new connection.

    A database file (and its -wal and -shm files) made before the hub kept them private, or by
    another program, is made readable by its owner only here.
    """
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    for _, name, file in cursor.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            for suffix in ("", "-wal", "-shm"):
                _owner_only(Path(file + suffix), 0o600)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A checkpoint copies the WAL back into the database file. At the default threshold the
    # commit that crosses it pays for copying up to 4 MB: a stall of a quarter second under
    # telemetry load. `hub run` checkpoints in the background instead (`checkpoint_wal`); the
    # last connection to close still checkpoints, so no large WAL stays behind.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def checkpoint_wal(engine: Engine) -> None:
    """Copy the WAL back into a SQLite database file without waiting on anyone (a no-op elsewhere)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


# Set by code about to write (a POST, a flow task, the MQTT writer): see _sqlite_begin.
write_intent: ContextVar[bool] = ContextVar("hub_sqlite_write_intent", default=False)


@contextmanager
def intending_to_write() -> Iterator[None]:
    """Mark the transactions begun inside as ones that will write (matters on SQLite only)."""
    token = write_intent.set(True)
    try:
        yield
    finally:
        write_intent.reset(token)


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection: Connection) -> None:
    """Begin SQLite transactions of code that will write IMMEDIATE.

    A deferred transaction that has read and then wants to write fails at once with "database
    is locked" when another connection committed in between (the MQTT writer commits many times
    a second); it cannot wait its way out. Beginning IMMEDIATE takes the write lock at the start,
    waiting for it (busy timeout) if need be, and keeps what the transaction reads consistent
    with what it writes. Other work keeps the driver's default: reads outside any transaction,
    which never hold the lock. PostgreSQL is not affected.
    """
    if connection.dialect.name == "sqlite" and write_intent.get():
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def settings_of(app: Flask) -> Settings:
    """Return the settings an app was built with."""
    settings: Settings = app.extensions["hub_settings"]
    return settings
