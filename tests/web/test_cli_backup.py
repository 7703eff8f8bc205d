"""`hub db backup` on a running demo under load, then `hub db restore` into a fresh instance:
every incident, bulletin, receipt and command committed before the backup began is there."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from hub.kernel.seed import DEMO_PASSWORD
from hub.runtime import free_port
from tests.web.test_cli_run import _csrf

HUB = str(Path(sys.executable).with_name("hub"))


def _snapshot(database: Path) -> dict[str, set[tuple[object, ...]]]:
    """Return what the live database holds now, read without disturbing the hub."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        return {
            "incidents": set(conn.execute("SELECT public_id FROM incidents")),
            "bulletins": set(conn.execute("SELECT id, title FROM bulletins")),
            "receipts": set(
                conn.execute("SELECT id FROM bulletin_recipients WHERE delivered_at IS NOT NULL")
            ),
            "commands": set(conn.execute("SELECT command_id FROM vehicle_commands WHERE state = 'done'")),
        }


def _login(base: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    session.post(
        f"{base}/login",
        timeout=30,
        data={"csrf_token": _csrf(page), "username": username, "password": DEMO_PASSWORD},
    )
    return session


def _post_form(
    session: requests.Session, base: str, path: str, fields: dict[str, object]
) -> requests.Response:
    page = session.get(f"{base}{path}", timeout=30).text
    return session.post(f"{base}{path}", timeout=30, data={"csrf_token": _csrf(page), **fields})


def _wait(condition, what: str, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.5)


@pytest.mark.slow  # starts the whole demo
def test_a_backup_of_the_running_demo_under_load_restores_everything_committed_before_it(
    tmp_path: Path,
) -> None:
    instance, fresh = tmp_path / "instance", tmp_path / "fresh"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HUB_"))}
    port = free_port()
    log_path = tmp_path / "hub.log"
    with log_path.open("wb") as log_file:
        hub = subprocess.Popen(
            [HUB, "run", "--demo", "--port", str(port)],
            env={**env, "HUB_INSTANCE_PATH": str(instance)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    database = instance / "hub.sqlite3"
    stop = threading.Event()
    writer: threading.Thread | None = None
    try:
        _wait(lambda: "Stop with Ctrl+C" in log_path.read_text(errors="replace"), "the demo started", 240)
        linyi = _login(base, "linyi-coord")
        issued = _post_form(
            linyi,
            base,
            "/bulletins/new",
            {
                "kind": "warning",
                "colour": "orange",
                "category": "natural_disaster",
                "title": "沂河洪水橙色预警（备份检查）",
                "area": "沂河流域",
                "text": "超警戒水位。",
                "addressed_cities": ["xuzhou", "suqian"],
                "scope": "restricted",
                "receipt_minutes": "30",
            },
        )
        assert issued.ok, issued.text
        vehicles = linyi.get(f"{base}/vehicles/live", timeout=30).text
        vehicle = vehicles.split('href="/vehicles/', 1)[1].split('"', 1)[0]
        detail = linyi.get(f"{base}/vehicles/{vehicle}", timeout=30).text
        linyi.post(
            f"{base}/vehicles/{vehicle}/commands",
            timeout=30,
            data={
                "csrf_token": _csrf(detail),
                "kind": "report_position",
                "ttl_minutes": "5",
                "status": "standby",
            },
        )
        # The simulated platforms take the warning, the simulated vehicle carries out the command.
        _wait(lambda: len(_snapshot(database)["receipts"]) >= 2, "both platforms took the warning")
        _wait(lambda: len(_snapshot(database)["commands"]) >= 1, "the vehicle carried out the command")

        created: list[int] = []

        def keep_reporting() -> None:
            # Load while the backup copies: incidents through the form, one after another.
            session = _login(base, "xuzhou-coord")
            while not stop.is_set():
                answer = _post_form(
                    session,
                    base,
                    "/incidents/new",
                    {
                        "title": f"备份期间的事件 {len(created)}",
                        "category": "natural_disaster",
                        "level": "IV",
                        "occurred_at": "2026-11-29T08:00",
                        "affected_cities": ["xuzhou"],
                    },
                )
                created.append(answer.status_code)

        writer = threading.Thread(target=keep_reporting)
        writer.start()
        _wait(lambda: len(created) >= 2, "the load started")
        before = _snapshot(database)
        backup = subprocess.run(
            [HUB, "db", "backup", str(tmp_path / "backup")],
            env={**env, "HUB_INSTANCE_PATH": str(instance), "HUB_DEMO": "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert backup.returncode == 0, backup.stdout + backup.stderr
        _wait(lambda: len(created) >= 4, "the load went on during the backup")
    finally:
        stop.set()
        if writer is not None:
            writer.join(timeout=60)
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=120)
    assert set(created) == {200}, created

    restored = subprocess.run(
        [HUB, "db", "restore", str(tmp_path / "backup")],
        env={**env, "HUB_INSTANCE_PATH": str(fresh), "HUB_DEMO": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    after = _snapshot(fresh / "hub.sqlite3")
    for kind, rows in before.items():
        assert rows <= after[kind], f"{kind} committed before the backup are missing from the restore"
    assert any("备份检查" in title for _, title in after["bulletins"])
