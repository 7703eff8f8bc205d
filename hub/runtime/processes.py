"""Start, watch and stop helper processes (brokers, servers) without leaving orphans."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from hub.runtime.periodic import Periodic

logger = logging.getLogger(__name__)

_POLL_INTERVAL = 0.02


class ProcessStartError(RuntimeError):
    """A managed process exited, or did not become ready in time, while starting."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on host that nothing listens on at the moment of the call."""
    # Another process may take the port before the caller binds it; on loopback with ports
    # handed out by the kernel that race is rare enough for tests and local runs.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """Return whether a TCP connection to host:port succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until host:port accepts TCP connections; raise TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not port_accepts(host, port):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout} s")
        time.sleep(_POLL_INTERVAL)


def process_group_alive(pgid: int) -> bool:
    """Return whether any process of group pgid is still running (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # killpg also succeeds while only unreaped zombies are left, which happens when the init of
    # a container does not reap orphans; /proc tells the two apart.
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # The command name in field 2 may hold spaces and parentheses: split after its end.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state not in ("Z", "X"):
            return True
    return False


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to the child when the thread that started it dies.

    stop() covers a clean exit; this covers the hub being killed, which would otherwise leave its
    broker and Prefect server running. Start managed processes from a long-lived thread (the main
    one): the signal follows the starting thread, not the whole parent process.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


class ManagedProcess:
    """Run a command in its own process group, logging to a file, until stopped."""

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = [os.fspath(arg) for arg in argv]
        self.log_path = log_path
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.name = name or Path(self.argv[0]).name
        self._proc: subprocess.Popen[bytes] | None = None
        # Set once the leader is reaped and its group is empty: from then on its pid may belong
        # to an unrelated process, which must never receive our signals.
        self._finished = False

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} running={self.running}>"

    @property
    def pid(self) -> int | None:
        """Return the pid of the current or last run, None if never started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def pgid(self) -> int | None:
        """Return the process group of the current or last run (equal to its pid)."""
        return self.pid

    @property
    def running(self) -> bool:
        """Return whether the main process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Return the exit status of the last run, None while running or never started."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> Self:
        """Start the command and block until ready() is true; raise ProcessStartError if not."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._finished = False
            self._proc = subprocess.Popen(  # noqa: S603 - argv comes from the caller, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                # A new session makes the child lead its own process group, so stop() can signal
                # every process it spawns, and a Ctrl-C in a terminal reaches only the caller.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        logger.info("started %s (pid %d), logging to %s", self.name, self._proc.pid, self.log_path)
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_until_ready(self) -> None:
        if self.ready is None:
            return
        started = time.monotonic()
        deadline = started + self.ready_timeout
        while not self.ready():
            if not self.running:
                raise ProcessStartError(
                    f"{self.name} exited with status {self.returncode} while starting; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise ProcessStartError(
                    f"{self.name} was not ready within {self.ready_timeout} s; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)
        logger.info("%s ready after %.2f s", self.name, time.monotonic() - started)

    def send_signal(self, signum: int) -> None:
        """Send signum to the main process only (for reload or save requests)."""
        if not self.running:
            raise RuntimeError(f"{self.name} is not running")
        assert self._proc is not None
        self._proc.send_signal(signum)

    def stop(self, timeout: float | None = None) -> int | None:
        """Send SIGTERM to the group, SIGKILL what is left after the grace period; return status."""
        if self._proc is None or self._finished:
            return self.returncode
        grace = self.stop_timeout if timeout is None else timeout
        pgid = self._proc.pid
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        # Wait for the children too: the leader may exit before the workers it told to stop.
        while self._proc.poll() is None or process_group_alive(pgid):
            if time.monotonic() >= deadline:
                logger.warning("%s still up %.1f s after SIGTERM; killing it", self.name, grace)
                return self.kill()
            time.sleep(_POLL_INTERVAL)
        logger.info("stopped %s (pid %d, status %s)", self.name, pgid, self._proc.returncode)
        self._finished = True
        return self._proc.returncode

    def kill(self) -> int | None:
        """Send SIGKILL to the whole group and reap the main process; return its status."""
        if self._proc is None or self._finished:
            return self.returncode
        pgid = self._proc.pid
        self._signal_group(signal.SIGKILL)
        status = self._proc.wait()
        # Group members are children of the leader, now of init: wait until they are gone so
        # that ports and files are free when this returns.
        deadline = time.monotonic() + 5.0
        while process_group_alive(pgid):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"processes of group {pgid} survived SIGKILL")
            time.sleep(_POLL_INTERVAL)
        logger.info("killed %s (pid %d, status %s)", self.name, pgid, status)
        self._finished = True
        return status

    def restart(self) -> Self:
        """Stop the process if it runs, then start it again with the same command."""
        self.stop()
        return self.start()

    def _signal_group(self, signum: int) -> None:
        assert self._proc is not None
        # ProcessLookupError: every member, leader included, has exited and been reaped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signum)

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the log file, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Supervised(Protocol):
    """What a Supervisor watches: a ManagedProcess, or a broker or server built on one."""

    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def log_path(self) -> Path: ...

    def log_tail(self, lines: int = 20) -> str: ...

    def start(self) -> object: ...

    def stop(self) -> object: ...


@dataclass
class _Watch:
    """What the supervisor knows about one process: since when it runs, how long to wait next."""

    delay: float
    started_at: float = 0.0
    restart_at: float | None = None


class Supervisor:
    """Keep processes running: start them, restart any that exits, stop them all at the end.

    A process that exits is started again after a delay that begins at `first_delay` and doubles
    with every exit that follows a short run, up to `max_delay`; a process that has run for
    `healthy_after` seconds is again restarted after `first_delay`. So a crash is repaired at
    once, and a process that cannot stay up (a port taken, a broken file) does not spin.
    """

    def __init__(
        self,
        processes: Sequence[Supervised],
        *,
        check_every: float = 1.0,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        healthy_after: float = 60.0,
    ) -> None:
        self.processes = list(processes)
        self.restarts = 0
        self.first_delay, self.max_delay, self.healthy_after = first_delay, max_delay, healthy_after
        self._state = {id(p): _Watch(first_delay) for p in self.processes}
        self._watch = Periodic("hub-supervisor", check_every, self._restart_exited)

    def start(self) -> Self:
        """Start every process that is not running yet, then watch them."""
        for process in self.processes:
            if not process.running:
                process.start()
            self._state[id(process)].started_at = time.monotonic()
        self._watch.start()
        return self

    def stop(self) -> None:
        """Stop watching, then stop every process."""
        self._watch.stop()
        for process in self.processes:
            process.stop()

    def _restart_exited(self) -> None:
        for process in self.processes:
            if self._watch.stopping:
                return
            state = self._state[id(process)]
            now = time.monotonic()
            if process.running:
                if now - state.started_at >= self.healthy_after:
                    state.delay = self.first_delay
                continue
            if state.restart_at is None:
                if now - state.started_at >= self.healthy_after:
                    state.delay = self.first_delay
                state.restart_at = now + state.delay
                logger.warning(
                    "%s exited with status %s; restarting it in %.0f s. End of %s:\n%s",
                    process.name,
                    process.returncode,
                    state.delay,
                    process.log_path,
                    process.log_tail(),
                )
            if now < state.restart_at:
                continue
            state.delay = min(state.delay * 2, self.max_delay)
            state.started_at = time.monotonic()
            try:
                process.start()
            except Exception:
                state.restart_at = time.monotonic() + state.delay
                logger.exception("%s did not start again; next try in %.0f s", process.name, state.delay)
                continue
            state.restart_at = None
            self.restarts += 1
            logger.warning("restarted %s (restart %d)", process.name, self.restarts)
