"""Tests for hub.runtime.processes: readiness, stopping and no orphans."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hub.runtime.processes import (
    ManagedProcess,
    ProcessStartError,
    free_port,
    port_accepts,
    process_group_alive,
    wait_for_port,
)

MakeProcess = Callable[..., ManagedProcess]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def make_process(tmp_path: Path) -> Iterator[MakeProcess]:
    """Return a factory of ManagedProcess running a Python script; all are killed at teardown."""
    made: list[ManagedProcess] = []

    def make(code: str, **kwargs: object) -> ManagedProcess:
        script = tmp_path / f"child{len(made)}.py"
        script.write_text(textwrap.dedent(code))
        process = ManagedProcess(
            [sys.executable, script], log_path=tmp_path / f"child{len(made)}.log", **kwargs
        )
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_port_returns_once_something_listens() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        wait_for_port("127.0.0.1", server.getsockname()[1], timeout=1)


def test_wait_for_port_times_out_when_nothing_listens() -> None:
    with pytest.raises(TimeoutError, match=r"within 0\.1 s"):
        wait_for_port("127.0.0.1", free_port(), timeout=0.1)


def test_start_waits_for_ready_and_stop_ends_the_whole_group(
    make_process: MakeProcess, tmp_path: Path
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    process = make_process(
        f"""
        import pathlib, subprocess, time
        child = subprocess.Popen(["sleep", "60"])
        pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))
        time.sleep(60)
        """,
        ready=pid_file.exists,
    )

    process.start()
    grandchild = int(pid_file.read_text())
    assert process.running
    assert _running(grandchild)

    status = process.stop()

    assert status == -signal.SIGTERM
    assert process.pgid is not None
    assert not process_group_alive(process.pgid)
    assert not _running(grandchild)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_stop_kills_a_process_that_ignores_sigterm(make_process: MakeProcess, tmp_path: Path) -> None:
    ready_file = tmp_path / "ready"
    process = make_process(
        f"""
        import pathlib, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pathlib.Path({str(ready_file)!r}).touch()
        time.sleep(60)
        """,
        ready=ready_file.exists,
        stop_timeout=0.3,
    )
    process.start()

    started = time.monotonic()
    status = process.stop()

    assert status == -signal.SIGKILL
    assert 0.3 <= time.monotonic() - started < 5
    assert not process.running


def test_kill_sends_sigkill(make_process: MakeProcess) -> None:
    process = make_process("import time; time.sleep(60)").start()

    assert process.kill() == -signal.SIGKILL
    assert process.pgid is not None
    assert not process_group_alive(process.pgid)


def test_start_reports_an_early_exit_with_the_log(make_process: MakeProcess) -> None:
    process = make_process("import sys; print('bad config', flush=True); sys.exit(3)", ready=lambda: False)

    with pytest.raises(ProcessStartError, match=r"status 3(.|\n)*bad config"):
        process.start()


def test_start_gives_up_after_the_ready_timeout_and_cleans_up(make_process: MakeProcess) -> None:
    process = make_process("import time; time.sleep(60)", ready=lambda: False, ready_timeout=0.2)

    with pytest.raises(ProcessStartError, match=r"not ready within 0\.2 s"):
        process.start()

    assert not process.running
    assert process.pgid is not None
    assert not process_group_alive(process.pgid)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_restart_runs_a_new_process_on_the_same_port(make_process: MakeProcess) -> None:
    port = free_port()
    process = make_process(
        f"""
        import socket, time
        server = socket.create_server(("127.0.0.1", {port}))
        time.sleep(60)
        """,
        ready=lambda: port_accepts("127.0.0.1", port),
    )
    first_pid = process.start().pid

    process.restart()

    assert process.pid != first_pid
    assert process.running
    assert port_accepts("127.0.0.1", port)


def test_context_manager_stops_on_exit(make_process: MakeProcess) -> None:
    with make_process("import time; time.sleep(60)") as process:
        assert process.running

    assert not process.running
    assert process.pgid is not None
    assert not process_group_alive(process.pgid)


def test_stop_and_kill_are_harmless_when_not_running(make_process: MakeProcess) -> None:
    process = make_process("pass")
    assert process.stop() is None

    process.start()
    process.stop()

    assert process.stop() == process.kill() == process.returncode


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_children_die_when_the_starting_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hub.runtime.processes import ManagedProcess\n"
        f"child = ManagedProcess(['sleep', '60'], log_path=Path({str(tmp_path / 'child.log')!r})).start()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n",
        encoding="utf-8",
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup code runs in the parent
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child_pid}").exists() and "Z" not in _state(child_pid):
        assert time.monotonic() < deadline, "the managed child outlived its killed parent"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"
