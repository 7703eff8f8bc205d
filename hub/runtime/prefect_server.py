"""Run a private Prefect server (API and UI) on loopback as a child process.

The hub must not import Prefect, so the server runs through its command line. Measured on a
2-core machine (prefect 3.9.1, SQLite, one process of about 220 MB): /api/health answers 12.0 s
after start in a fresh home (database migrations) and 3.7 s on restart with an existing one;
stop() returns in 0.2 s.
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from hub.runtime.processes import ManagedProcess, free_port

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def prefect_command() -> list[str]:
    """Return the argv prefix that runs the Prefect CLI of the running interpreter."""
    # The console script sits next to the interpreter in a virtualenv; use it so the server
    # runs exactly as `prefect server start` would, and fall back to the module otherwise.
    script = Path(sys.executable).with_name("prefect")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "prefect"]


def retention_settings(retention: timedelta) -> dict[str, str]:
    """Return the Prefect server settings that keep its database to `retention` of history.

    Prefect's own vacuum service deletes finished top-level flow runs (their task runs and
    states go with them, their logs and artifacts in a later pass) and events older than the
    period; by default it keeps flow runs 90 days and vacuums only events. An external Prefect
    server needs the same variables (docs/OPERATIONS.md).
    """
    seconds = str(int(retention.total_seconds()))
    return {
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,flow_runs",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD": seconds,
        # This one is a plain timedelta to pydantic, which reads ISO 8601 durations, not seconds.
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": f"PT{seconds}S",
    }


class ManagedPrefectServer:
    """Start and stop `prefect server start` with its own PREFECT_HOME and port."""

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        *,
        env: Mapping[str, str] | None = None,
        retention: timedelta = timedelta(days=2),
        ready_timeout: float = 180.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.home = home
        self.port = port if port is not None else free_port(HOST)
        # The parent's PREFECT_* settings (an API URL, a profile, a database URL) would point
        # this server somewhere else; drop them and pass only what the caller gives in env.
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        child_env.update(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
            **retention_settings(retention),
        )
        child_env.update(env or {})
        self._process = ManagedProcess(
            [*prefect_command(), "server", "start", "--host", HOST, "--port", str(self.port)],
            log_path=home / "server.log",
            ready=self._healthy,
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            env=child_env,
            cwd=home,
            name=f"prefect-server:{self.port}",
        )

    def __repr__(self) -> str:
        return f"<ManagedPrefectServer {self.api_url} pid={self.pid} running={self.running}>"

    @property
    def api_url(self) -> str:
        """Return the value clients need in PREFECT_API_URL."""
        return f"http://{HOST}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        """Return the address of the Prefect UI."""
        return f"http://{HOST}:{self.port}/"

    @property
    def pid(self) -> int | None:
        """Return the pid of the current or last server process."""
        return self._process.pid

    @property
    def pgid(self) -> int | None:
        """Return the process group of the server and the workers it spawns."""
        return self._process.pgid

    @property
    def running(self) -> bool:
        """Return whether the server process is alive."""
        return self._process.running

    @property
    def name(self) -> str:
        """Return the name used in logs."""
        return self._process.name

    @property
    def returncode(self) -> int | None:
        """Return the exit status of the last run, None while running or never started."""
        return self._process.returncode

    @property
    def log_path(self) -> Path:
        """Return the log file."""
        return self._process.log_path

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:  # noqa: S310 - fixed http URL
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> Self:
        """Start the server and block until /api/health answers 200."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._process.start()
        return self

    def stop(self) -> int | None:
        """Stop the server and every process it started; return the CLI's exit status."""
        return self._process.stop()

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of home/server.log."""
        return self._process.log_tail(lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
