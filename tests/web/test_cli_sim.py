"""`hub sim vehicles --control` in a real process on a real Mosquitto, driven by `hub sim control`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
from click.testing import CliRunner, Result
from paho.mqtt.enums import CallbackAPIVersion

from contracts.mqtt import ConnectionState, decode_connection_state, state_topic
from hub.runtime import ManagedMosquitto, free_port
from web.cli import main

pytestmark = pytest.mark.slow

TIMEOUT = 10.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll `condition` until it holds, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


class StateWatcher:
    """A bare paho client that records every connection state of xz-01, retained ones included."""

    def __init__(self, broker: ManagedMosquitto) -> None:
        self._lock = threading.Lock()
        self._states: list[ConnectionState] = []
        subscribed = threading.Event()
        self._paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-watcher")
        self._paho.on_subscribe = lambda *_: subscribed.set()
        self._paho.on_message = self._on_message
        self._paho.connect(broker.host, broker.port)
        self._paho.subscribe(state_topic("hh", "xuzhou", "xz-01"), qos=1)
        self._paho.loop_start()
        assert subscribed.wait(TIMEOUT), "watcher got no SUBACK"

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._states.append(decode_connection_state(bytes(message.payload)))

    def states(self) -> list[ConnectionState]:
        """Return the states that arrived, in order."""
        with self._lock:
            return list(self._states)

    def close(self) -> None:
        """Disconnect."""
        self._paho.disconnect()
        self._paho.loop_stop()


@dataclass(frozen=True)
class Simulator:
    """A running `hub sim vehicles --control` process and the controls it printed."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def interrupt(self) -> int:
        """Press Ctrl+C and return the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(TIMEOUT)


@pytest.fixture
def simulator(mosquitto_broker: ManagedMosquitto, tmp_path: Path) -> Iterator[Simulator]:
    """Start `hub sim vehicles` with controls on a free port; wait until both vehicles are online."""
    credentials = tmp_path / "vehicles.json"
    credentials.write_text(
        json.dumps(
            [
                {"city": "xuzhou", "code": "xz-01", "username": None, "password": None},
                {"city": "suqian", "code": "sq-01", "username": None, "password": None},
            ]
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    # Otherwise the banner sits in the pipe's buffer until the process ends.
    env["PYTHONUNBUFFERED"] = "1"
    log_path = tmp_path / "sim.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("hub")),
                "sim",
                "vehicles",
                "--url",
                mosquitto_broker.url,
                "--credentials",
                str(credentials),
                "--control",
                "127.0.0.1:0",
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        log = log_path.read_text
        wait_until(lambda: "HUB_SIM_CONTROL_TOKEN=" in log() or process.poll() is not None, "the banner")
        url = re.search(r"Controls on (http://127\.0\.0\.1:\d+): hub sim control", log())
        token = re.search(r"export HUB_SIM_CONTROL_TOKEN=(\S+)", log())
        assert url and token, log()
        sim = Simulator(process, url.group(1), token.group(1), log_path)
        headers = {"Authorization": f"Bearer {sim.token}"}

        def all_online() -> bool:
            answer = requests.get(f"{sim.url}/_sim/vehicles", headers=headers, timeout=TIMEOUT)
            return all(vehicle["connected"] for vehicle in answer.json())

        wait_until(all_online, "both vehicles online")
        yield sim
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)


def control(url: str, *args: str, token: str | None = None) -> Result:
    """Run `hub sim control --url URL ARGS…` in this process, the token from the environment."""
    return CliRunner().invoke(
        main, ["sim", "control", "--url", url, *args], env={"HUB_SIM_CONTROL_TOKEN": token}
    )


def test_sim_control_lists_drops_and_brings_back_a_vehicle(
    simulator: Simulator, mosquitto_broker: ManagedMosquitto
) -> None:
    watcher = StateWatcher(mosquitto_broker)
    try:
        listing = control(simulator.url, "list", token=simulator.token)
        assert listing.exit_code == 0, listing.output
        header, *rows = listing.output.splitlines()
        assert header.split() == ["CODE", "CITY", "CONNECTED", "SESSION", "STATUS", "LAT", "LON"]
        assert [row.split()[:3] for row in rows] == [["xz-01", "xuzhou", "yes"], ["sq-01", "suqian", "yes"]]
        first = int(next(row for row in rows if row.startswith("xz-01")).split()[3])

        dropped = control(simulator.url, "drop", "xz-01", "--abrupt", token=simulator.token)
        assert dropped.exit_code == 0, dropped.output
        assert dropped.output == "xz-01 dropped off abruptly; the broker sends its last will.\n"
        # The will: no time, the session of the connection that died.
        will = ConnectionState(online=False, session=first)
        wait_until(lambda: will in watcher.states(), "the will")
        rows = control(simulator.url, "list", token=simulator.token).output.splitlines()[1:]
        assert [row.split()[:3] for row in rows] == [["xz-01", "xuzhou", "no"], ["sq-01", "suqian", "yes"]]

        back = control(simulator.url, "back", "xz-01", token=simulator.token)
        assert back.exit_code == 0, back.output
        answer = re.fullmatch(r"xz-01 is back online, session (\d+)\.\n", back.output)
        assert answer, back.output
        session = int(answer.group(1))
        assert session > first
        wait_until(lambda: any(s.online and s.session == session for s in watcher.states()), "back online")

        dropped = control(simulator.url, "drop", "xz-01", token=simulator.token)
        assert dropped.output == "xz-01 dropped off cleanly.\n"
        wait_until(
            lambda: any(not s.online and s.session == session and s.at for s in watcher.states()),
            "the clean offline state",
        )
    finally:
        watcher.close()


def test_sim_control_explains_what_went_wrong(simulator: Simulator) -> None:
    unknown = control(simulator.url, "back", "nope", token=simulator.token)
    assert unknown.exit_code == 1
    assert unknown.output == "Error: the controls answered HTTP 404: no vehicle with code 'nope'\n"

    stranger = control(simulator.url, "list", token="wrong")
    assert stranger.exit_code == 1
    assert "HTTP 401: a valid bearer token is needed" in stranger.output

    nobody = control(f"http://127.0.0.1:{free_port()}", "list", token=simulator.token)
    assert nobody.exit_code == 1
    assert "cannot reach the controls at http://127.0.0.1:" in nobody.output

    missing = control(simulator.url, "list")
    assert missing.exit_code == 2 and "--token" in missing.output


def test_ctrl_c_stops_the_vehicles_and_their_controls(simulator: Simulator) -> None:
    assert simulator.interrupt() == 0, simulator.log()
    after = control(simulator.url, "list", token=simulator.token)
    assert after.exit_code == 1 and "cannot reach the controls" in after.output


def test_sim_vehicles_refuses_a_control_address_without_a_port(tmp_path: Path) -> None:
    credentials = tmp_path / "vehicles.json"
    credentials.write_text("[]")
    result = CliRunner().invoke(
        main,
        [
            "sim",
            "vehicles",
            "--url",
            "mqtt://127.0.0.1:1",
            "--credentials",
            str(credentials),
            "--control",
            "here",
        ],
    )
    assert result.exit_code == 2
    assert "expected HOST:PORT" in result.output
