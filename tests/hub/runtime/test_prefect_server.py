"""Tests for hub.runtime.prefect_server against a real `prefect server start`."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hub.runtime import ManagedPrefectServer, port_accepts, process_group_alive


@pytest.mark.slow
def test_server_starts_healthy_in_its_home_and_stops_without_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings of the calling process must not leak into the server.
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    home = tmp_path / "prefect-home"
    server = ManagedPrefectServer(home)

    with server:
        with urllib.request.urlopen(f"{server.api_url}/health", timeout=5) as response:  # noqa: S310
            assert response.status == 200
            assert json.load(response) is True
        pgid = server.pgid

    assert (home / "prefect.db").exists()
    assert not (tmp_path / "elsewhere").exists()
    assert server.api_url in (home / "server.log").read_text()
    assert pgid is not None
    assert not server.running
    assert not process_group_alive(pgid)
    assert not port_accepts("127.0.0.1", server.port)


def _api(server: ManagedPrefectServer, method: str, path: str, body: object) -> object:
    """Call the Prefect API as its own client does: a 503 (its SQLite database busy, here with a
    vacuum every second) is asked again after a moment."""
    for attempt in range(10):
        request = urllib.request.Request(  # noqa: S310 - loopback http
            f"{server.api_url}{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return json.load(response) if response.status != 204 else None
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _finished_run(server: ManagedPrefectServer, flow_id: str, name: str) -> str:
    run = _api(server, "POST", "/flow_runs/", {"flow_id": flow_id, "name": name})
    assert isinstance(run, dict)
    for state in ("RUNNING", "COMPLETED"):
        _api(server, "POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": state}, "force": True})
    return str(run["id"])


def _run_ids(home: Path) -> set[str]:
    with sqlite3.connect(home / "prefect.db") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM flow_run")}


@pytest.mark.slow
def test_finished_runs_older_than_the_retention_are_deleted_by_prefects_vacuum(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    server = ManagedPrefectServer(
        home,
        retention=timedelta(hours=2),
        # The vacuum runs hourly by default; the test cannot wait that long.
        env={"PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": "1"},
    )
    with server:
        flow = _api(server, "POST", "/flows/", {"name": "retention-check"})
        assert isinstance(flow, dict)
        old = _finished_run(server, flow["id"], "old")
        recent = _finished_run(server, flow["id"], "recent")
        # Age one run past the retention, as if it had finished three hours ago.
        with sqlite3.connect(home / "prefect.db") as conn:
            (end_time,) = conn.execute("SELECT end_time FROM flow_run WHERE id = ?", (old,)).fetchone()
            assert end_time, "a completed run has an end time"
            aged = (datetime.fromisoformat(end_time) - timedelta(hours=3)).isoformat(sep=" ")
            conn.execute("UPDATE flow_run SET end_time = ? WHERE id = ?", (aged, old))

        deadline = time.monotonic() + 60
        while old in _run_ids(home) and time.monotonic() < deadline:
            time.sleep(0.5)

        remaining = _run_ids(home)
    assert old not in remaining, "the vacuum did not delete the run past the retention"
    assert recent in remaining
