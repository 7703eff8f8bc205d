"""Run a private Mosquitto broker on loopback, for tests, demos and single-host deployments."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from hub.runtime.processes import ManagedProcess, port_accepts

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_RELOAD_LINE = "Reloading config."


class MosquittoNotInstalledError(FileNotFoundError):
    """The Mosquitto binary could not be found."""


@dataclass(frozen=True)
class MosquittoConfig:
    """Settings for one broker; render() turns them into a mosquitto.conf."""

    port: int
    data_dir: Path
    persistence: bool = True
    # Mosquitto writes its persistence file only on clean exit, on SIGUSR1 or every
    # autosave_interval seconds: with its default of 1800 s a crash loses the queued messages
    # and the persistent sessions. One second bounds the loss at little cost.
    autosave_interval: int = 1
    # The default of 1000 silently drops QoS 1 messages to a slow subscriber that is still
    # connected; the hub's subscriber must never lose messages that way.
    max_queued_messages: int = 1_000_000
    # Mosquitto's default of 20 unacknowledged QoS 1 messages per client caps a subscriber that
    # acknowledges after its commit at 20 messages a batch; 0 lifts the cap (max_queued still bounds).
    max_inflight_messages: int = 0
    password_file: Path | None = None
    acl_file: Path | None = None
    allow_anonymous: bool = True
    # Account Mosquitto switches to when started as root; None keeps the invoking account.
    # Mosquitto's own default, "mosquitto", cannot write a data_dir that root owns.
    user: str | None = None
    extra: tuple[str, ...] = ()

    @property
    def conf_path(self) -> Path:
        """Return where start() writes the configuration."""
        return self.data_dir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """Return the broker's log file."""
        return self.data_dir / "mosquitto.log"

    @property
    def db_path(self) -> Path:
        """Return the persistence file (exists after the first save)."""
        return self.data_dir / "mosquitto.db"

    def render(self) -> str:
        """Return the mosquitto.conf text for these settings."""
        user = self.user or pwd.getpwuid(os.geteuid()).pw_name
        lines = [
            "# Written by hub.runtime.mosquitto: changes are lost at the next start.",
            f"listener {self.port} {HOST}",
            f"allow_anonymous {_bool(self.allow_anonymous)}",
            # Without it Nagle and delayed ACKs add about 40 ms to every small message.
            "set_tcp_nodelay true",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_inflight_messages {self.max_inflight_messages}",
            f"persistence {_bool(self.persistence)}",
            # Mosquitto joins location and file name without adding a separator.
            f"persistence_location {_value(self.data_dir)}/",
            f"persistence_file {self.db_path.name}",
            f"autosave_interval {self.autosave_interval}",
            f"log_dest file {_value(self.log_path)}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"user {_value(user)}",
        ]
        if self.password_file is not None:
            lines.append(f"password_file {_value(self.password_file)}")
        if self.acl_file is not None:
            lines.append(f"acl_file {_value(self.acl_file)}")
        lines.extend(_value(line) for line in self.extra)
        return "\n".join(lines) + "\n"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _value(value: object) -> str:
    text = str(value)
    # One option per line: a newline would smuggle in another option.
    if "\n" in text or "\r" in text:
        raise ValueError(f"mosquitto.conf values cannot contain line breaks: {text!r}")
    return text


def mosquitto_binary() -> Path:
    """Return the Mosquitto executable on PATH, else where Debian installs it."""
    return Path(shutil.which("mosquitto") or "/usr/sbin/mosquitto")


class ManagedMosquitto:
    """Start, stop, crash and restart one Mosquitto process on a fixed loopback port."""

    def __init__(
        self,
        config: MosquittoConfig,
        binary: str | Path | None = None,
        *,
        ready_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.binary = Path(binary) if binary is not None else mosquitto_binary()
        self._process = ManagedProcess(
            [self.binary, "-c", config.conf_path],
            log_path=config.log_path,
            ready=lambda: port_accepts(HOST, config.port),
            ready_timeout=ready_timeout,
            stop_timeout=stop_timeout,
            name=f"mosquitto:{config.port}",
        )

    def __repr__(self) -> str:
        return f"<ManagedMosquitto {self.url} pid={self.pid} running={self.running}>"

    @property
    def host(self) -> str:
        """Return the address the broker listens on."""
        return HOST

    @property
    def port(self) -> int:
        """Return the broker's TCP port."""
        return self.config.port

    @property
    def url(self) -> str:
        """Return the broker address as an mqtt:// URL."""
        return f"mqtt://{HOST}:{self.config.port}"

    @property
    def pid(self) -> int | None:
        """Return the pid of the current or last broker process."""
        return self._process.pid

    @property
    def running(self) -> bool:
        """Return whether the broker process is alive."""
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

    def start(self) -> Self:
        """Write the configuration, start the broker and wait until it accepts TCP connections."""
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise MosquittoNotInstalledError(
                f"Mosquitto not found at {self.binary}; install it: apt-get install -y mosquitto"
            )
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.config.conf_path.write_text(self.config.render())
        self._process.start()
        return self

    def stop(self) -> int | None:
        """Stop the broker cleanly (SIGTERM); it saves its persistence file on the way out."""
        return self._process.stop()

    def kill(self) -> int | None:
        """Kill the broker with SIGKILL, as a crash would: unsaved state is lost."""
        return self._process.kill()

    def restart(self) -> Self:
        """Stop the broker if it runs and start it again on the same port and data."""
        self.stop()
        return self.start()

    def reload(self, timeout: float = 5.0) -> None:
        """Make the broker re-read its configuration, password and ACL files (SIGHUP) and wait."""
        before = self._log_count(_RELOAD_LINE)
        self._process.send_signal(signal.SIGHUP)
        # The broker logs the line as its main loop starts the reload and finishes it before
        # serving any client again, so once the line is there later clients see the new files.
        deadline = time.monotonic() + timeout
        while self._log_count(_RELOAD_LINE) == before:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the broker did not reload within {timeout} s")
            time.sleep(0.01)

    def _log_count(self, text: str) -> int:
        try:
            return self.config.log_path.read_text(errors="replace").count(text)
        except FileNotFoundError:
            return 0

    def save(self, timeout: float = 5.0) -> None:
        """Make the broker write its persistence file now (SIGUSR1) and wait until it has."""
        if not self.config.persistence:
            raise RuntimeError("persistence is off: the broker has nothing to save")
        before = _inode(self.config.db_path)
        self._process.send_signal(signal.SIGUSR1)
        # The broker writes <file>.new and renames it over the old file: a new inode means a
        # save completed. The broker is single-threaded, so any save that completes now began
        # after every message it acknowledged before this call.
        deadline = time.monotonic() + timeout
        while _inode(self.config.db_path) in (before, None):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.config.db_path} was not written within {timeout} s")
            time.sleep(0.01)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the broker log."""
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


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
