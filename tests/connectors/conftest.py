"""Fixtures for the connector tests: hub links and plain paho peers on a real Mosquitto."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from connectors.mqtt_link import InboundMessage, MqttLink, MqttLinkConfig
from contracts.mqtt import hub_state_topic, hub_subscriptions
from hub.runtime import ManagedMosquitto

TIMEOUT = 5.0
HUB_STATE = hub_state_topic("hh", "test")


class Peer:
    """A vehicle or linkage system: a plain paho client that publishes and records what it gets."""

    def __init__(self, broker: ManagedMosquitto, client_id: str, **credentials: str) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._subscribed = threading.Event()
        self._paho = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if credentials:
            self._paho.username_pw_set(credentials["username"], credentials["password"])
        self._paho.on_subscribe = lambda *_: self._subscribed.set()
        self._paho.on_message = lambda _client, _userdata, message: self.messages.put(message)
        connected = threading.Event()
        self._paho.on_connect = lambda *_: connected.set()
        self._paho.connect(broker.host, broker.port)
        self._paho.loop_start()
        assert connected.wait(TIMEOUT), "peer got no CONNACK"

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self._paho.subscribe(topic, qos=1)
        assert self._subscribed.wait(TIMEOUT), "peer got no SUBACK"

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self._paho.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), "peer got no PUBACK"

    def receive(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self._paho.disconnect()
        self._paho.loop_stop()


class Links:
    """Make hub links for a test, crash them as a dying process would, stop the rest at teardown."""

    def __init__(self) -> None:
        self._live: list[MqttLink] = []

    def make(self, broker: ManagedMosquitto, **overrides: Any) -> MqttLink:
        settings: dict[str, Any] = {
            "url": broker.url,
            "client_id": "hub-test",
            "state_topic": HUB_STATE,
            "subscriptions": hub_subscriptions("hh"),
            "keepalive": 5,
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 0.4,
            "connect_timeout": 2.0,
        }
        link = MqttLink(MqttLinkConfig(**(settings | overrides)))
        self._live.append(link)
        return link

    def connected(self, broker: ManagedMosquitto, **overrides: Any) -> MqttLink:
        link = self.make(broker, **overrides).start()
        link.wait_connected(TIMEOUT)
        return link

    def crash(self, link: MqttLink) -> None:
        """End the link as a killed process would: no acks, no DISCONNECT, the socket just closes."""
        client = link._client
        sock = client.socket()
        client.loop_stop()
        assert sock is not None
        sock.close()
        self._live.remove(link)

    def stop_all(self) -> None:
        for link in self._live:
            link.stop(timeout=1.0)


@pytest.fixture
def links() -> Iterator[Links]:
    """Return a maker of hub links; those not crashed are stopped at teardown."""
    made = Links()
    yield made
    made.stop_all()


@pytest.fixture
def peers() -> Iterator[Callable[..., Peer]]:
    """Return a maker of connected peers, all disconnected at teardown."""
    made: list[Peer] = []

    def make(broker: ManagedMosquitto, client_id: str, **credentials: str) -> Peer:
        peer = Peer(broker, client_id, **credentials)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


def take(link: MqttLink, count: int, timeout: float = TIMEOUT) -> list[InboundMessage]:
    """Return exactly `count` messages from the link's queue, failing after `timeout`."""
    got: list[InboundMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {len(got)} of {count} messages within {timeout} s"
        got += link.next_batch(count - len(got), remaining)
    return got


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll `condition` until it holds, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout} s"
        time.sleep(0.01)
