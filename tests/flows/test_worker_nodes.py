"""Flow workers and ingest workers are hub nodes: on the status page while they run, stopped when
they end cleanly, dead at once when killed (their host sees the process gone)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from hub.config import Settings
from hub.extensions import db
from hub.kernel import nodes
from hub.kernel.nodes import NodeState
from hub.runtime import ManagedMosquitto
from tests.flows.processes import spawn

START_S = 120  # a busy 2-core machine takes a while to import Prefect and the hub


def _node_of(process: subprocess.Popen[bytes]) -> NodeState | None:
    db.session.expire_all()
    found = [n for n in nodes.states(db.session) if n.pid == process.pid]
    db.session.rollback()
    return found[0] if found else None


def _wait(condition: Callable[[], object], what: str, log: Path, seconds: float = START_S) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} not within {seconds} s; log:\n{log.read_text()[-3000:]}")


def _check_lifecycle(start: Callable[[], subprocess.Popen[bytes]], role: str, log: Path) -> None:
    """Start, see it alive with its role, stop it cleanly; start again, SIGKILL it."""
    process = start()
    try:
        _wait(lambda: (n := _node_of(process)) is not None and n.alive, f"the {role} node alive", log)
        node = _node_of(process)
        assert node is not None and node.roles == (role,) and node.stopped_at is None
        first_seen = node.last_seen_at
        _wait(
            lambda: (n := _node_of(process)) is not None and n.last_seen_at > first_seen,
            f"the {role} node beating",
            log,
            seconds=30,
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        stopped = _node_of(process)
        assert stopped is not None and stopped.stopped_at is not None and not stopped.alive
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    killed = start()
    try:
        _wait(lambda: (n := _node_of(killed)) is not None and n.alive, f"the second {role} node alive", log)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    dead = _node_of(killed)
    # Never marked stopped, yet dead to every process of its host at once (the pid is gone).
    assert dead is not None and dead.stopped_at is None and not dead.alive
    assert dead.name not in nodes.live_names(db.session)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_worker_is_a_node_stopped_on_exit_and_dead_when_killed(
    app: Flask, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "flow-worker.log"

    def start() -> subprocess.Popen[bytes]:
        return spawn(
            ["web", "flows", "serve"],
            settings,
            "flow-worker",
            log,
            env={"PREFECT_RUNNER_POLL_FREQUENCY": "1"},
            own_group=True,
        )

    _check_lifecycle(start, "flow-worker", log)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_an_ingest_worker_is_a_node_stopped_on_exit_and_dead_when_killed(
    app: Flask, settings: Settings, mosquitto_broker: ManagedMosquitto, tmp_path: Path
) -> None:
    log = tmp_path / "ingest-worker.log"

    def start() -> subprocess.Popen[bytes]:
        return spawn(
            ["web", "mqtt", "ingest-worker", "--index", "0"],
            settings,
            "ingest-worker",
            log,
            env={"HUB_MQTT_URL": mosquitto_broker.url, "HUB_ID": "test"},
            own_group=True,
        )

    _check_lifecycle(start, "ingest", log)
