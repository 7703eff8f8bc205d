"""Tell when the disk is full, so that the hub refuses new work clearly instead of failing anyhow.

Nothing committed is at risk when the disk fills: SQLite and PostgreSQL roll the failed
transaction back whole. What the hub must do is say so, and refuse writes before they start
while the free space is below a margin (`HUB_MIN_FREE_DISK_MB`), so that the space left goes to
what is already in flight (telemetry batches, flow results) and to the database's own journal.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

# PostgreSQL's SQLSTATE for "disk full" (class 53, insufficient resources).
PG_DISK_FULL = "53100"


def free_bytes(path: Path) -> int:
    """Return the bytes an unprivileged writer may still use on the file system holding `path`."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def is_storage_full(exc: BaseException) -> bool:
    """Tell whether an error (or one it wraps) says the disk or the database is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if isinstance(current, sqlite3.OperationalError) and "disk is full" in str(current):
            return True
        if getattr(current, "pgcode", None) == PG_DISK_FULL:
            return True
        # SQLAlchemy keeps the driver's error in `orig`; Python chains the rest.
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False
