"""Tests for hub.runtime.mosquitto against a real broker and real paho clients."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from hub.runtime import (
    ManagedMosquitto,
    MosquittoConfig,
    MosquittoNotInstalledError,
    Supervisor,
    port_accepts,
    process_group_alive,
)

TIMEOUT = 5.0


class Client:
    """A connected paho client that records what it receives, for assertions."""

    def __init__(self, broker: ManagedMosquitto, client_id: str, *, clean_session: bool) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.session_present: bool | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self._paho.on_connect = self._on_connect
        self._paho.on_subscribe = lambda *_: self._subscribed.set()
        self._paho.on_message = lambda _client, _userdata, message: self.messages.put(message)
        self._paho.connect(broker.host, broker.port)
        self._paho.loop_start()
        assert self._connected.wait(TIMEOUT), "no CONNACK"

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, flags: Any, *_: Any) -> None:
        self.session_present = flags.session_present
        self._connected.set()

    def subscribe(self, topic: str) -> None:
        self._paho.subscribe(topic, qos=1)
        assert self._subscribed.wait(TIMEOUT), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        info = self._paho.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), "no PUBACK"

    def receive(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self._paho.disconnect()
        self._paho.loop_stop()


Connect = Callable[..., Client]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Return a factory of connected clients, all disconnected at teardown."""
    clients: list[Client] = []

    def make(broker: ManagedMosquitto, client_id: str, *, clean_session: bool = True) -> Client:
        client = Client(broker, client_id, clean_session=clean_session)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _queue_for_offline_subscriber(broker: ManagedMosquitto, connect: Connect) -> None:
    subscriber = connect(broker, "hub-subscriber", clean_session=False)
    subscriber.subscribe("city/xuzhou/alerts")
    subscriber.close()
    publisher = connect(broker, "city-xuzhou")
    publisher.publish("city/xuzhou/alerts", b"flood warning")
    # Disconnect now: a client still connected when the broker goes down waits out paho's
    # reconnect delay (1 s) when its loop is stopped at teardown.
    publisher.close()


def _assert_offline_subscriber_gets_message(broker: ManagedMosquitto, connect: Connect) -> None:
    subscriber = connect(broker, "hub-subscriber", clean_session=False)
    assert subscriber.session_present
    message = subscriber.receive()
    assert (message.topic, message.payload) == ("city/xuzhou/alerts", b"flood warning")


def test_render_binds_loopback_and_keeps_messages(tmp_path: Path) -> None:
    config = MosquittoConfig(
        port=18830,
        data_dir=tmp_path,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        allow_anonymous=False,
        extra=("max_inflight_messages 100",),
    )

    lines = config.render().splitlines()

    assert [line for line in lines if line.startswith("listener")] == ["listener 18830 127.0.0.1"]
    assert "set_tcp_nodelay true" in lines
    assert "allow_anonymous false" in lines
    assert "persistence true" in lines
    assert f"persistence_location {tmp_path}/" in lines
    assert "autosave_interval 1" in lines
    assert "max_queued_messages 1000000" in lines
    assert f"log_dest file {tmp_path}/mosquitto.log" in lines
    assert f"password_file {tmp_path}/passwd" in lines
    assert f"acl_file {tmp_path}/acl" in lines
    assert lines[-1] == "max_inflight_messages 100"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root makes Mosquitto switch accounts")
def test_render_as_root_keeps_root_so_the_broker_can_write_its_data(tmp_path: Path) -> None:
    assert "user root" in MosquittoConfig(port=1, data_dir=tmp_path).render().splitlines()


def test_render_refuses_line_breaks_in_values(tmp_path: Path) -> None:
    config = MosquittoConfig(port=1, data_dir=tmp_path, extra=("log_type all\nlistener 1883",))

    with pytest.raises(ValueError, match="line breaks"):
        config.render()


def test_start_without_binary_says_how_to_install(tmp_path: Path) -> None:
    broker = ManagedMosquitto(MosquittoConfig(port=1, data_dir=tmp_path), binary=tmp_path / "no-mosquitto")

    with pytest.raises(MosquittoNotInstalledError, match="apt-get install -y mosquitto"):
        broker.start()


def test_qos1_round_trip(mosquitto_broker: ManagedMosquitto, connect: Connect) -> None:
    subscriber = connect(mosquitto_broker, "hub")
    subscriber.subscribe("city/+/alerts")

    connect(mosquitto_broker, "city-suqian").publish("city/suqian/alerts", "暴雨".encode())

    message = subscriber.receive()
    assert message.topic == "city/suqian/alerts"
    assert message.payload.decode() == "暴雨"
    assert message.qos == 1
    assert mosquitto_broker.url == f"mqtt://127.0.0.1:{mosquitto_broker.port}"


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_queued_message_survives_a_clean_restart(
    mosquitto_broker: ManagedMosquitto, connect: Connect
) -> None:
    _queue_for_offline_subscriber(mosquitto_broker, connect)
    port = mosquitto_broker.port

    mosquitto_broker.restart()

    assert mosquitto_broker.port == port
    _assert_offline_subscriber_gets_message(mosquitto_broker, connect)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_queued_message_survives_kill_after_save(
    mosquitto_broker: ManagedMosquitto, connect: Connect
) -> None:
    _queue_for_offline_subscriber(mosquitto_broker, connect)

    mosquitto_broker.save()
    mosquitto_broker.kill()
    mosquitto_broker.restart()

    _assert_offline_subscriber_gets_message(mosquitto_broker, connect)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_queued_message_survives_kill_after_autosave(
    mosquitto_broker: ManagedMosquitto, connect: Connect
) -> None:
    db = mosquitto_broker.config.db_path
    _queue_for_offline_subscriber(mosquitto_broker, connect)
    before = db.stat().st_ino if db.exists() else None

    # autosave_interval is 1 s: a replaced file within a few seconds is a save made after
    # the PUBACK, without any help from SIGUSR1 or a clean exit.
    deadline = time.monotonic() + 3
    while not db.exists() or db.stat().st_ino == before:
        assert time.monotonic() < deadline, "no autosave within 3 s"
        time.sleep(0.05)
    mosquitto_broker.kill()
    mosquitto_broker.restart()

    _assert_offline_subscriber_gets_message(mosquitto_broker, connect)


def test_stop_leaves_no_process_and_frees_the_port(mosquitto_broker: ManagedMosquitto) -> None:
    pid = mosquitto_broker.pid
    assert pid is not None

    assert mosquitto_broker.stop() == 0

    assert not mosquitto_broker.running
    assert not process_group_alive(pid)
    assert not port_accepts(mosquitto_broker.host, mosquitto_broker.port)


def test_reload_rereads_files_and_keeps_serving(
    make_mosquitto: Callable[..., ManagedMosquitto], connect: Connect, tmp_path: Path
) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic read city/#\n")
    broker = make_mosquitto(acl_file=acl)
    watcher = connect(broker, "watcher")
    watcher.subscribe("city/#")

    publisher = connect(broker, "city-lianyungang")
    publisher.publish("city/lianyungang/status", b"denied")

    acl.write_text("topic readwrite city/#\n")
    broker.reload()
    publisher.publish("city/lianyungang/status", b"allowed")

    # MQTT 3.1.1 acknowledges a denied publish and drops it: the first delivery is the second.
    assert watcher.receive().payload == b"allowed"
    assert broker.running


def test_supervised_broker_comes_back_after_sigkill_with_its_queued_messages(
    mosquitto_broker: ManagedMosquitto, connect: Connect
) -> None:
    # The fixture's broker is already running; the supervisor watches it from here on.
    supervisor = Supervisor([mosquitto_broker], check_every=0.1, first_delay=0.5)
    supervisor.start()
    try:
        db = mosquitto_broker.config.db_path
        before = db.stat().st_ino if db.exists() else None
        _queue_for_offline_subscriber(mosquitto_broker, connect)
        # The default autosave_interval (1 s) writes the queued message without a clean exit.
        deadline = time.monotonic() + 3
        while not db.exists() or db.stat().st_ino == before:
            assert time.monotonic() < deadline, "no autosave within 3 s"
            time.sleep(0.05)
        port, old_pid = mosquitto_broker.port, mosquitto_broker.pid
        os.kill(old_pid or 0, signal.SIGKILL)

        deadline = time.monotonic() + 5
        while not (supervisor.restarts == 1 and port_accepts(mosquitto_broker.host, port)):
            assert time.monotonic() < deadline, f"the broker was not restarted: {mosquitto_broker.log_tail()}"
            time.sleep(0.05)
        assert mosquitto_broker.port == port and mosquitto_broker.pid != old_pid
        _assert_offline_subscriber_gets_message(mosquitto_broker, connect)
    finally:
        supervisor.stop()


def test_supervisor_backs_off_while_a_process_keeps_dying(tmp_path: Path) -> None:
    from hub.runtime import ManagedProcess

    dying = ManagedProcess(["/bin/sh", "-c", "exit 3"], log_path=tmp_path / "dying.log", name="dying")
    supervisor = Supervisor([dying], check_every=0.05, first_delay=0.2, max_delay=0.8)
    supervisor.start()
    try:
        time.sleep(2.5)
    finally:
        supervisor.stop()
    # Delays 0.2, 0.4, 0.8, 0.8 … give about four restarts in 2.5 s, not fifty.
    assert 2 <= supervisor.restarts <= 5, supervisor.restarts
