"""What the operator status page shows: each part of the running hub, up or down, last seen when.

The runner registers a check per part it started (the managed broker and Prefect server, the
broker link, the Prefect API, the database, the ingest workers, the flow dispatcher and the
scheduler); a background thread runs the checks every few seconds, so a page or a monitoring
probe reads the last results at once and a slow check never holds a request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from hub.runtime.periodic import Periodic

log = logging.getLogger(__name__)

# A check answers whether its part is up, and a short detail (a port, a count, an error).
Check = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class Component:
    """One part of the hub as last checked."""

    name: str
    kind: str  # process, link, api, database, thread
    up: bool | None  # None until first checked
    detail: str = ""
    checked_at: datetime | None = None
    last_seen: datetime | None = None  # the last time it was up


class StatusBoard:
    """Run registered checks periodically and keep their last results."""

    def __init__(self, every: float = 5.0) -> None:
        self._checks: dict[str, tuple[str, Check]] = {}
        self._results: dict[str, Component] = {}
        self._lock = threading.Lock()
        self._periodic = Periodic("hub-status", every, self.refresh)

    def register(self, name: str, kind: str, check: Check) -> None:
        """Add a part to watch; it is checked from the next refresh on."""
        with self._lock:
            self._checks[name] = (kind, check)
            self._results[name] = Component(name, kind, None)

    def refresh(self) -> None:
        """Run every check now; a check that raises counts as down, with its error."""
        with self._lock:
            checks = list(self._checks.items())
        for name, (kind, check) in checks:
            now = datetime.now(UTC)
            try:
                up, detail = check()
            except Exception as exc:  # a broken check must not stop the others
                up, detail = False, f"{type(exc).__name__}: {exc}"
            with self._lock:
                previous = self._results.get(name) or Component(name, kind, None)
                if previous.up and not up:
                    log.warning("status: %s is down (%s)", name, detail)
                elif previous.up is False and up:
                    log.info("status: %s is up again", name)
                self._results[name] = replace(
                    previous,
                    up=up,
                    detail=detail,
                    checked_at=now,
                    last_seen=now if up else previous.last_seen,
                )

    def components(self) -> list[Component]:
        """Return the last result of every part, in the order they were registered."""
        with self._lock:
            return [self._results[name] for name in self._checks]

    def start(self) -> StatusBoard:
        """Check once now, then every few seconds in the background."""
        self.refresh()
        self._periodic.start()
        return self

    def stop(self) -> None:
        """Stop checking."""
        self._periodic.stop()
