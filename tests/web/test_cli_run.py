"""`hub run --demo` as a newcomer starts it: real Mosquitto, real Prefect server, real HTTP."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hub.kernel.seed import DEMO_PASSWORD
from hub.runtime import free_port

pytestmark = pytest.mark.slow
REPOSITORY = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str, *, instance: Path | None = None) -> list[str]:
    """Command lines that mention `text`; with `instance`, only processes started for that hub.

    The instance filter reads each process's HUB_INSTANCE_PATH, so that another hub running on
    the same machine (another test run, say) is never taken for this one's.
    """
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text not in args:
                continue
            if instance is not None:
                environ = (cmdline.parent / "environ").read_bytes().split(b"\0")
                if f"HUB_INSTANCE_PATH={instance}".encode() not in environ:
                    continue
        except OSError:
            continue
        found.append(args)
    return found


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.mark.parametrize("ingest_workers", [0, 2])
def test_demo_runs_notifies_and_stops_everything_it_started(tmp_path: Path, ingest_workers: int) -> None:
    instance = tmp_path / "instance"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HUB_"))}
    env["HUB_INSTANCE_PATH"] = str(instance)
    env["HUB_MQTT_INGEST_WORKERS"] = str(ingest_workers)
    env["PYTHONFAULTHANDLER"] = "1"
    # A file, not a pipe: a pipe nobody reads fills up and would stall the hub's logging.
    log_path = tmp_path / "hub.log"
    log_file = log_path.open("wb")
    hub = subprocess.Popen(
        [str(Path(sys.executable).with_name("hub")), "run", "--demo", "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while "Stop with Ctrl+C" not in log_path.read_text(encoding="utf-8", errors="replace"):
            assert hub.poll() is None, log_path.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "the hub did not start within 120 s"
            time.sleep(0.2)
        banner = log_path.read_text(encoding="utf-8", errors="replace")
        assert f"http://127.0.0.1:{port}/" in banner, banner
        assert "linyi-coord" in banner and DEMO_PASSWORD in banner
        controls = re.search(r"hub sim control --url (\S+) --token (\S+) ", banner)
        assert controls, banner
        assert _processes_mentioning(str(instance / "mosquitto")), "no managed broker"
        prefect_port = re.search(r"Prefect API: http://127.0.0.1:(\d+)/api", banner)
        assert prefect_port, banner
        prefect_server = f"--port {prefect_port.group(1)}"
        assert _processes_mentioning(prefect_server), "no managed Prefect server"

        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        page = session.get(f"{base}/login", timeout=10).text
        session.post(
            f"{base}/login",
            timeout=10,
            data={"csrf_token": _csrf(page), "username": "linyi-coord", "password": DEMO_PASSWORD},
        )
        page = session.get(f"{base}/incidents/new", timeout=10).text
        response = session.post(
            f"{base}/incidents/new",
            timeout=10,
            data={
                "csrf_token": _csrf(page),
                "title": "沂河洪峰过境",
                "category": "natural_disaster",
                "level": "II",
                "occurred_at": "2026-11-29T08:00",
                "affected_cities": ["linyi"],
            },
        )
        assert "/incidents/" in response.url

        xuzhou = requests.Session()
        page = xuzhou.get(f"{base}/login", timeout=10).text
        xuzhou.post(
            f"{base}/login",
            timeout=10,
            data={"csrf_token": _csrf(page), "username": "xuzhou-coord", "password": DEMO_PASSWORD},
        )
        deadline = time.monotonic() + 60
        while "沂河洪峰过境" not in xuzhou.get(f"{base}/dashboard/live", timeout=10).text:
            assert time.monotonic() < deadline, "Xuzhou was never notified"
            time.sleep(0.5)

        # The demo's simulated vehicles are online over the authenticated broker and obey commands.
        deadline = time.monotonic() + 30
        while xuzhou.get(f"{base}/vehicles/live", timeout=10).text.count("online-dot on") < 20:
            assert time.monotonic() < deadline, "the 20 demo vehicles did not all come online"
            time.sleep(0.5)
        if ingest_workers:
            # Positions come in through the worker processes, and only through them.
            workers = _processes_mentioning("mqtt ingest-worker", instance=instance)
            assert len(workers) == ingest_workers, workers
            with sqlite3.connect(instance / "hub.sqlite3") as database:
                stored = database.execute(
                    "SELECT count(*), count(DISTINCT vehicle_id) FROM vehicle_positions"
                )
                rows, vehicles = stored.fetchone()
            assert rows > 0 and vehicles > 1
            logs = [(instance / "logs" / f"ingest-worker-{i}.log").read_text() for i in range(ingest_workers)]
            assert all("connected" in log for log in logs), logs
        page = session.get(f"{base}/vehicles/live", timeout=10).text
        vehicle_id = re.search(r'href="/vehicles/(\d+)">临沂1号指挥车', page)
        assert vehicle_id, page
        detail = session.get(f"{base}/vehicles/{vehicle_id.group(1)}", timeout=10).text
        session.post(
            f"{base}/vehicles/{vehicle_id.group(1)}/commands",
            timeout=10,
            data={
                "csrf_token": _csrf(detail),
                "kind": "report_position",
                "ttl_minutes": "5",
                "status": "standby",
            },
        )
        deadline = time.monotonic() + 20
        while (
            'class="state-done"'
            not in session.get(f"{base}/vehicles/{vehicle_id.group(1)}/commands", timeout=10).text
        ):
            assert time.monotonic() < deadline, "the command was never acknowledged as done"
            time.sleep(0.3)
        # The demo fleet answers its controls: list the vehicles as an operator would.
        control_url, token = controls.groups()
        listed = subprocess.run(
            [
                str(Path(sys.executable).with_name("hub")),
                "sim",
                "control",
                "--url",
                control_url,
                "--token",
                token,
                "list",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert listed.returncode == 0 and "linyi" in listed.stdout, listed.stdout + listed.stderr

        # The operator status page sees every part up, and the same is served for monitoring. The
        # board looks every 5 s and counts the scheduler up once its first tick is done: on a
        # loaded machine that can be after the demo's first incident and command.
        expected = ("mosquitto", "prefect-server", "mqtt-link", "prefect-api", "database", "scheduler")
        deadline = time.monotonic() + 45
        while True:
            status = session.get(f"{base}/api/v1/status", timeout=10).json()
            parts = {c["name"]: c for c in status["components"]}
            if all(parts.get(name, {}).get("up") for name in expected):
                break
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert session.get(f"{base}/api/v1/ready", timeout=10).status_code == 200
        if not ingest_workers:
            _survives_a_killed_broker(session, base, instance)
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=90)
        except subprocess.TimeoutExpired:
            # Make it say where it is stuck (faulthandler writes every thread's stack to the log).
            hub.send_signal(signal.SIGABRT)
            hub.wait(timeout=30)
        log_file.close()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert hub.returncode == 0, output
    assert "Stopped." in output
    assert _processes_mentioning(str(instance)) == []
    assert _processes_mentioning("mqtt ingest-worker", instance=instance) == []
    assert _processes_mentioning(prefect_server) == []


def _positions(instance: Path) -> int:
    with sqlite3.connect(instance / "hub.sqlite3") as database:
        return int(database.execute("SELECT count(*) FROM vehicle_positions").fetchone()[0])


def _survives_a_killed_broker(session: requests.Session, base: str, instance: Path) -> None:
    """SIGKILL the managed broker: it is restarted and positions are stored again within 30 s."""
    broker = [
        int(cmdline.parent.name)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline")
        if b"mosquitto" in cmdline.read_bytes().split(b"\0")[0]
        and str(instance).encode() in cmdline.read_bytes()
    ]
    assert len(broker) == 1, broker
    os.kill(broker[0], signal.SIGKILL)
    killed_at = time.monotonic()

    def broker_status() -> dict[str, object]:
        parts = session.get(f"{base}/api/v1/status", timeout=10).json()["components"]
        return next(c for c in parts if c["name"] == "mosquitto")

    # The supervisor restarts it (the status board checks every 5 s) ...
    while not (str(broker_status()["detail"]).endswith("restarts 1") and broker_status()["up"]):
        assert time.monotonic() - killed_at < 30, broker_status()
        time.sleep(0.5)
    # ... and the vehicles' reports are stored again, all within 30 s of the kill.
    before = _positions(instance)
    while _positions(instance) <= before:
        assert time.monotonic() - killed_at < 30, "no position stored within 30 s of killing the broker"
        time.sleep(0.5)


def test_repeated_stop_signals_still_stop_everything_the_hub_started(tmp_path: Path) -> None:
    # `make demo` forwards SIGTERM, so a SIGTERM to its process group reaches the hub twice: once
    # from the group and once from make, the second in the middle of the shutdown.
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HUB_"))}
    env["HUB_INSTANCE_PATH"] = str(instance)
    env["HUB_DEMO"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"
    # This checkout's code, in the hub and in every process it starts, whatever else is installed.
    env["PYTHONPATH"] = str(REPOSITORY)
    log_path = tmp_path / "hub.log"
    log_file = log_path.open("wb")
    hub = subprocess.Popen(
        [sys.executable, "-m", "web", "run", "--demo", "--port", str(free_port())],
        cwd=REPOSITORY,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    prefect_server = None
    try:
        deadline = time.monotonic() + 120
        while "Stop with Ctrl+C" not in log_path.read_text(encoding="utf-8", errors="replace"):
            assert hub.poll() is None, log_path.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "the hub did not start within 120 s"
            time.sleep(0.2)
        banner = log_path.read_text(encoding="utf-8", errors="replace")
        prefect_port = re.search(r"Prefect API: http://127.0.0.1:(\d+)/api", banner)
        assert prefect_port, banner
        prefect_server = f"--port {prefect_port.group(1)}"
        assert _processes_mentioning(str(instance / "mosquitto")) and _processes_mentioning(prefect_server)

        os.killpg(hub.pid, signal.SIGTERM)
        time.sleep(0.3)
        hub.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        if hub.poll() is None:
            os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(timeout=90)
        except subprocess.TimeoutExpired:
            hub.send_signal(signal.SIGABRT)
            hub.wait(timeout=30)
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
        log_file.close()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in output and "_StopServing" not in output, output
    assert hub.returncode == 0, output
    assert "Stopped." in output
    assert _processes_mentioning(str(instance)) == []
    assert _processes_mentioning(prefect_server) == []
