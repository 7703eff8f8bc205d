"""Tests for hub.runtime.prefect_server against a real `prefect server start`."""

from __future__ import annotations

import json
import urllib.request
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
