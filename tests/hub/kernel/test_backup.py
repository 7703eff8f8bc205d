"""Online backups of a running hub, and their restore into a fresh, stopped instance."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from hub.config import Settings
from hub.extensions import db
from hub.incidents.models import Incident
from hub.kernel.backup import BackupError, backup, restore
from hub.runtime.instance_lock import InstanceLock


def _sqlite_only(settings: Settings) -> None:
    if not settings.sqlalchemy_url.startswith("sqlite"):
        with pytest.raises(BackupError, match="pg_dump"):
            backup(settings, Path("/nonexistent-backup"))
        pytest.skip("PostgreSQL is backed up with pg_dump; the refusal is what is checked here")


def test_a_backup_under_load_restores_every_incident_committed_before_it(
    app: Flask, settings: Settings, make_incident, tmp_path: Path
) -> None:
    _sqlite_only(settings)
    (settings.instance_path / "mosquitto").mkdir()
    (settings.instance_path / "mosquitto" / "hub-password").write_text("secret")
    committed_before = [make_incident("linyi", "III").public_id for _ in range(5)]
    stop = threading.Event()
    written: list[object] = []

    def keep_writing() -> None:
        # Another connection keeps committing while the backup copies, as a running hub would.
        with app.app_context():
            while not stop.is_set():
                written.append(make_incident("xuzhou", "IV").public_id)
            db.session.remove()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 3:
            threading.Event().wait(0.05)
        report = backup(settings, tmp_path / "backup")
    finally:
        stop.set()
        writer.join()
    assert report.files == ("mosquitto",)
    assert (tmp_path / "backup" / "hub.sqlite3").stat().st_mode & 0o777 == 0o600

    fresh = settings.with_overrides(
        instance_path=tmp_path / "fresh", database_url=f"sqlite:///{tmp_path / 'fresh' / 'hub.sqlite3'}"
    )
    restore(fresh, tmp_path / "backup")
    engine = sa.create_engine(fresh.sqlalchemy_url)
    with engine.connect() as connection:
        restored = set(connection.scalars(sa.select(Incident.public_id)))
    engine.dispose()
    assert set(committed_before) <= restored
    # The copy is one moment of the live database: some of the concurrent writes, never a torn one.
    assert len(restored) >= len(committed_before) + 1
    assert (tmp_path / "fresh" / "mosquitto" / "hub-password").read_text() == "secret"


def test_restore_refuses_while_a_hub_holds_the_instance(
    settings: Settings, app: Flask, tmp_path: Path
) -> None:
    _sqlite_only(settings)
    backup(settings, tmp_path / "backup")
    lock = InstanceLock(settings.instance_path).acquire()
    try:
        with pytest.raises(BackupError, match="stop the hub first"):
            restore(settings, tmp_path / "backup")
    finally:
        lock.release()
    restore(settings, tmp_path / "backup")


def test_a_backup_never_overwrites_an_earlier_one(settings: Settings, app: Flask, tmp_path: Path) -> None:
    _sqlite_only(settings)
    backup(settings, tmp_path / "backup")
    with pytest.raises(BackupError, match="already exists"):
        backup(settings, tmp_path / "backup")


def test_incidents_attachments_are_backed_up_and_restored(settings: Settings, tmp_path: Path) -> None:
    _sqlite_only(settings)
    folder = settings.instance_path / "attachments"
    folder.mkdir()
    (folder / "0f3c.png").write_bytes(b"\x89PNG\r\n\x1a\nphoto")
    report = backup(settings, tmp_path / "backup")
    assert "attachments" in report.files
    fresh = settings.with_overrides(
        instance_path=tmp_path / "fresh", database_url=f"sqlite:///{tmp_path / 'fresh' / 'hub.sqlite3'}"
    )
    restore(fresh, tmp_path / "backup")
    assert (tmp_path / "fresh" / "attachments" / "0f3c.png").read_bytes() == b"\x89PNG\r\n\x1a\nphoto"
