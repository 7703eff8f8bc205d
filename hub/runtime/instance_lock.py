"""One running hub per instance folder: `hub run` holds a lock on `instance/hub.lock`.

A second `hub run` on the same folder, or a restore into a folder whose hub still runs, finds
the lock taken and refuses with a message instead of racing the running hub.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "hub.lock"


class InstanceBusyError(RuntimeError):
    """Another process holds the instance folder."""


class InstanceLock:
    """An exclusive, non-blocking lock on an instance folder, released when the process ends."""

    def __init__(self, instance: Path) -> None:
        self.path = instance / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock or raise InstanceBusyError at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise InstanceBusyError(f"a hub is running on {self.path.parent}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def instance_in_use(instance: Path) -> bool:
    """Tell whether a hub holds this instance folder now."""
    lock = InstanceLock(instance)
    try:
        lock.acquire()
    except InstanceBusyError:
        return True
    lock.release()
    return False
