"""Run a private PostgreSQL cluster on loopback as a child process (topologies, tests, benchmarks).

initdb and the server refuse to run as root: started as root, every program runs as the
`postgres` user (Debian's package creates it) through runuser, and the cluster's folder is given
to that user. The server is the `postgres` program itself, in the foreground, under a
ManagedProcess: stopping the process group sends it SIGTERM (a smart shutdown, once its clients
are gone), and a parent that dies takes it along.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Self

from hub.runtime.processes import ManagedProcess, free_port, port_accepts

HOST = "127.0.0.1"
RUN_AS = "postgres"


class PostgresNotInstalledError(FileNotFoundError):
    """PostgreSQL's server programs (initdb, postgres) are missing."""


def postgres_bin() -> Path:
    """Return the folder of the newest installed PostgreSQL server programs."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise PostgresNotInstalledError(
            "PostgreSQL's server programs are not installed: apt-get install -y postgresql"
        )
    return found[-1].parent


class ManagedPostgres:
    """A cluster in `folder` (made by initdb on first start), trusting loopback, on its own port."""

    def __init__(self, folder: Path, port: int | None = None, *, ready_timeout: float = 60.0) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port if port is not None else free_port(HOST)
        self.bin = postgres_bin()
        self._as_root = os.geteuid() == 0
        self._process = ManagedProcess(
            self._command(
                "postgres",
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={HOST}",
                # The socket in the cluster's own folder: /var/run/postgresql may not exist or be
                # someone else's.
                "-k",
                str(self.data),
            ),
            log_path=folder / "server.log",
            ready=self._accepts_sessions,
            ready_timeout=ready_timeout,
            stop_timeout=30.0,
            name=f"postgres:{self.port}",
        )

    def __repr__(self) -> str:
        return f"<ManagedPostgres {HOST}:{self.port} pid={self.pid} running={self.running}>"

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin / program), *args]
        if self._as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        return command

    def _accepts_sessions(self) -> bool:
        # The port opens while the server still recovers or starts ("the database system is
        # starting up"); pg_isready tells when it takes sessions.
        if not port_accepts(HOST, self.port):
            return False
        command = [str(self.bin / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port)]
        return subprocess.run(command, check=False, timeout=10).returncode == 0  # noqa: S603 - fixed program

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(  # noqa: S603 - fixed programs, no shell
            self._command(program, *args), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")

    @property
    def pid(self) -> int | None:
        """Return the pid of the server (or of runuser, started as root)."""
        return self._process.pid

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
        """Return the server's log file."""
        return self._process.log_path

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the server's log."""
        return self._process.log_tail(lines)

    def url(self, database: str, driver: str = "psycopg2") -> str:
        """Return the SQLAlchemy URL of `database` as the superuser (trusted on loopback)."""
        return f"postgresql+{driver}://{RUN_AS}@{HOST}:{self.port}/{database}"

    def start(self) -> Self:
        """Make the cluster if it does not exist, then start the server and wait for its port."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.folder, RUN_AS, RUN_AS)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", RUN_AS, "--auth=trust", "-E", "UTF8")
        self._process.start()
        return self

    def stop(self) -> int | None:
        """Stop the server (SIGTERM to its group; SIGKILL after 30 s)."""
        return self._process.stop()

    def kill(self) -> int | None:
        """Kill the server with SIGKILL, as a crash would."""
        return self._process.kill()

    def psql(self, database: str, sql: str) -> None:
        """Run one SQL command on `database`."""
        self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port),
                  "-U", RUN_AS, "-d", database, "-c", sql)  # fmt: skip

    def create_database(self, name: str, *, extensions: tuple[str, ...] = ()) -> str:
        """Create database `name` with `extensions` in it; return its psycopg2 URL."""
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        for extension in extensions:
            self.psql(name, f'CREATE EXTENSION IF NOT EXISTS "{extension}"')
        return self.url(name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
