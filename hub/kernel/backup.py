"""Consistent online backups of a hub, and their restore into a stopped one.

A backup is one folder: `hub.sqlite3`, a copy made with SQLite's online backup API (consistent
while the hub keeps writing: the copy is one transaction's view), and `instance/`, the files of
the instance folder that matter for a restart (the broker's persistence and password, the demo
keys, the Prefect home is left out: it is rebuilt). A `MANIFEST.json` says what was copied and
when. PostgreSQL is backed up with `pg_dump` (see docs/OPERATIONS.md); this module refuses it
rather than pretend.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.config import Settings
from hub.runtime.instance_lock import instance_in_use

DATABASE_FILE = "hub.sqlite3"
MANIFEST = "MANIFEST.json"
# Instance entries worth keeping: the broker's persistence, password and files; incidents'
# attachments (hub/incidents/attachments.py); demo keys.
KEPT = ("mosquitto", "attachments", "demo-secret-key", "demo-encryption-key", "demo-vehicles.json")
# Copied page by page in steps, so a busy hub's writers wait at most one step for the copy.
PAGES_PER_STEP = 1024


class BackupError(RuntimeError):
    """A backup or restore that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class BackupReport:
    """Where a backup went and what it holds."""

    path: Path
    database_bytes: int
    files: tuple[str, ...]


def _sqlite_path(settings: Settings) -> Path:
    url = settings.sqlalchemy_url
    if not url.startswith("sqlite:///"):
        raise BackupError(
            "only the SQLite database is backed up by this command; back up PostgreSQL with pg_dump "
            "(docs/OPERATIONS.md)"
        )
    return Path(url.removeprefix("sqlite:///"))


def backup(settings: Settings, target: Path) -> BackupReport:
    """Write a consistent backup of a (possibly running) hub into `target`, which must not exist."""
    source = _sqlite_path(settings)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new folder for each backup")
    target.mkdir(parents=True, mode=0o700)
    copy = target / DATABASE_FILE
    # closing(): a sqlite3 connection's own context manager commits but does not close.
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as live,
        closing(sqlite3.connect(copy)) as out,
    ):
        live.backup(out, pages=PAGES_PER_STEP)
    copy.chmod(0o600)
    files = []
    for name in KEPT:
        path = settings.instance_path / name
        if path.is_dir():
            shutil.copytree(path, target / "instance" / name)
        elif path.is_file():
            (target / "instance").mkdir(exist_ok=True, mode=0o700)
            shutil.copy2(path, target / "instance" / name)
        else:
            continue
        files.append(name)
    size = copy.stat().st_size
    manifest = {
        "made_at": datetime.now(UTC).isoformat(),
        "database": DATABASE_FILE,
        "database_bytes": size,
        "instance_files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return BackupReport(target, size, tuple(files))


def restore(settings: Settings, source: Path) -> BackupReport:
    """Put a backup in place of this instance's database and files; the hub must be stopped."""
    if instance_in_use(settings.instance_path):
        raise BackupError("stop the hub first: a restore replaces the database under it")
    manifest_path = source / MANIFEST
    if not manifest_path.exists():
        raise BackupError(f"{source} is not a backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    database = _sqlite_path(settings)
    backup_database = source / manifest["database"]
    with closing(sqlite3.connect(f"file:{backup_database}?mode=ro", uri=True)) as check:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"{backup_database} fails SQLite's integrity check")
    settings.instance_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    database.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copy2(backup_database, database)
    database.chmod(0o600)
    files = tuple(manifest.get("instance_files", ()))
    for name in files:
        saved, live = source / "instance" / name, settings.instance_path / name
        if live.is_dir():
            shutil.rmtree(live)
        if saved.is_dir():
            shutil.copytree(saved, live)
        else:
            shutil.copy2(saved, live)
    return BackupReport(database, database.stat().st_size, files)
