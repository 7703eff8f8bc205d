"""A city-edge broker's bridge tells the regional broker whether it is up, and the hub records it.

Real brokers: the regional one refuses anonymous clients and grants the bridge's account its
city's subtree only, so the notification must travel inside it (`<root>/v1/<city>/bridge/state`).
The edge broker is killed, not stopped, as a crash or a cut cable would take it away: the
regional broker then publishes the "0" will that the bridge left with it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from flask import Flask

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from contracts.mqtt import bridge_state_topic, hub_state_topic, hub_subscriptions
from flows.context import use_app
from flows.mqtt_bridge import MqttBridge
from hub.config import Settings
from hub.extensions import db
from hub.kernel import bridges
from hub.kernel.broker_auth import (
    HubCredentials,
    mosquitto_hash,
    new_secret,
    write_broker_files,
    write_edge_broker_files,
)
from hub.runtime.edge_broker import EdgeBridge, bridge_account, bridge_config_lines
from tests.fixtures.mosquitto import MakeMosquitto

ROOT = "hh"
CITY = "xuzhou"
TIMEOUT = 60.0  # the machine that runs the suite is shared and loaded
RUN_AS = {"user": "root"} if os.geteuid() == 0 else {}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(mqtt_root=ROOT)


def wait_for(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


def bridge_of(city: str) -> bridges.BridgeStatus | None:
    db.session.expire_all()
    found = [b for b in bridges.states(db.session) if b.city == city]
    db.session.rollback()
    return found[0] if found else None


def retained(url_host: str, port: int, topic: str, password: str) -> bytes | None:
    """Return the retained message a fresh subscriber gets on `topic` (as the hub's account)."""
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{new_secret()[:8]}")
    client.username_pw_set("hub", password)
    client.on_connect = lambda c, *_: c.subscribe(topic, 1)
    client.on_message = lambda c, u, message: got.append(bytes(message.payload))
    client.connect(url_host, port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0] if got else None


@pytest.fixture
def hub_password() -> str:
    return new_secret()


@pytest.fixture
def regional(app: Flask, city, make_mosquitto: MakeMosquitto, tmp_path: Path, hub_password: str):
    city(CITY)
    db.session.commit()
    files = write_broker_files(
        db.session,
        tmp_path / "regional",
        HubCredentials("hub", mosquitto_hash(hub_password)),
        ROOT,
        extra_accounts=[bridge_account(EdgeBridge(CITY, "127.0.0.1", 0, "x"), mosquitto_hash("bridge-pw"))],
    )
    return make_mosquitto(allow_anonymous=False, password_file=files[0], acl_file=files[1], **RUN_AS)


@pytest.fixture
def hub_side(app: Flask, regional, hub_password: str) -> Iterator[MqttBridge]:
    use_app(app)
    link = MqttLink(
        MqttLinkConfig(
            url=regional.url,
            client_id="hub-test",
            state_topic=hub_state_topic(ROOT, "test"),
            subscriptions=hub_subscriptions(ROOT),
            username="hub",
            password=hub_password,
            reconnect_min_delay=0.1,
            reconnect_max_delay=0.5,
        )
    ).start()
    link.wait_connected(TIMEOUT)
    writer = MqttBridge(link, root=ROOT, publish_poll=0.2)
    writer.start()
    try:
        yield writer
    finally:
        writer.stop()
        link.stop()
        use_app(None)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_the_regional_broker_hears_the_bridge_come_and_go_and_the_hub_records_it(
    make_mosquitto: MakeMosquitto, regional, hub_side: MqttBridge, tmp_path: Path, hub_password: str
) -> None:
    topic = bridge_state_topic(ROOT, CITY)
    assert bridge_of(CITY) is None
    bridge = EdgeBridge(CITY, regional.host, regional.port, "bridge-pw", root=ROOT)
    edge_files = write_edge_broker_files(db.session, tmp_path / "edge", CITY, ROOT)
    edge = make_mosquitto(
        allow_anonymous=False,
        password_file=edge_files[0],
        acl_file=edge_files[1],
        extra=bridge_config_lines(bridge),
        **RUN_AS,
    )

    wait_for(lambda: (b := bridge_of(CITY)) is not None and b.connected, "the bridge recorded as connected")
    assert retained(regional.host, regional.port, topic, hub_password) == b"1"
    up = bridge_of(CITY)
    assert up is not None
    assert "denied" not in regional.log_tail(200).lower()

    edge.kill()
    wait_for(lambda: (b := bridge_of(CITY)) is not None and not b.connected, "the bridge recorded as down")
    assert retained(regional.host, regional.port, topic, hub_password) == b"0"
    down = bridge_of(CITY)
    assert down is not None and down.changed_at > up.changed_at

    edge.start()
    wait_for(lambda: (b := bridge_of(CITY)) is not None and b.connected, "the bridge connected again")
    again = bridge_of(CITY)
    assert again is not None and again.changed_at > down.changed_at
    # The "0" the edge broker published on its own side while the link was down was queued for
    # the bridge too; whatever order it arrives in, the last word on the regional broker is "1".
    time.sleep(3)
    assert retained(regional.host, regional.port, topic, hub_password) == b"1"
    settled = bridge_of(CITY)
    assert settled is not None and settled.connected

    edge.stop()  # cleanly, this time
    wait_for(
        lambda: (b := bridge_of(CITY)) is not None and not b.connected, "the bridge down after a clean stop"
    )
    assert hub_side.counts["dead_letter"] == 0
