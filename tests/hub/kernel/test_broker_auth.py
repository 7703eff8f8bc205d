"""The password and ACL files, proven with a real Mosquitto: peers stay on their own topics."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from flows.ingest_worker import ingest_group
from hub.config import Settings
from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel.actors import Actor
from hub.kernel.broker_auth import (
    HubCredentials,
    check_mosquitto_hash,
    mosquitto_hash,
    render_acl_file,
    write_broker_files,
    write_edge_broker_files,
)
from hub.kernel.models import Role
from hub.runtime.edge_broker import EdgeBridge, bridge_account

HUB_PASSWORD = "hub-secret-password"
ADMIN = Actor("system", "tests", None, Role.ADMIN)


def test_hash_round_trip() -> None:
    stored = mosquitto_hash("s3cret")
    assert stored.startswith("$7$101$")
    assert check_mosquitto_hash("s3cret", stored)
    assert not check_mosquitto_hash("other", stored)


class Peer:
    """A paho client that records what it receives and whether its connect was accepted."""

    def __init__(self, port: int, username: str | None, password: str | None, protocol=mqtt.MQTTv311) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[object] = queue.Queue()
        self.subacks: queue.Queue[list[object]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def accepted(self) -> bool:
        rc = self.connack.get(timeout=5)
        return not rc.is_failure  # type: ignore[attr-defined]

    def subscribe(self, topic: str) -> list[object]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured_broker(app, city, make_mosquitto, tmp_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    passwords: dict[str, str] = {}
    for slug, code in (("linyi", "v01"), ("xuzhou", "v01")):
        vehicle, secret = fleet.register_vehicle(db.session, ADMIN, city(slug), code, f"{slug} 指挥车")
        passwords[vehicle.mqtt_username] = secret
    system, secret = fleet.register_linkage_system(
        db.session, ADMIN, city("linyi"), "jj110", "110", "临沂110"
    )
    passwords[system.mqtt_username] = secret
    db.session.commit()
    hub = HubCredentials("hub", mosquitto_hash(HUB_PASSWORD))
    password_file, acl_file = write_broker_files(db.session, tmp_path / "auth", hub)
    broker = make_mosquitto(allow_anonymous=False, password_file=password_file, acl_file=acl_file)
    yield broker.port, passwords


def _nothing_arrives(peer: Peer, seconds: float = 0.7) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not peer.messages.empty():
            return False
        time.sleep(0.05)
    return True


def test_anonymous_and_wrong_password_are_refused(secured_broker) -> None:
    port, _passwords = secured_broker
    anonymous = Peer(port, None, None)
    assert not anonymous.accepted()
    wrong = Peer(port, "veh-linyi-v01", "not-the-password")
    assert not wrong.accepted()
    for peer in (anonymous, wrong):
        peer.client.loop_stop()


def test_vehicle_publishes_only_its_own_topics(secured_broker) -> None:
    port, passwords = secured_broker
    hub = Peer(port, "hub", HUB_PASSWORD)
    assert hub.accepted()
    hub.subscribe("hh/#")
    linyi = Peer(port, "veh-linyi-v01", passwords["veh-linyi-v01"])
    assert linyi.accepted()
    try:
        linyi.publish("hh/v1/linyi/vehicles/v01/telemetry", b"own")
        assert hub.messages.get(timeout=5) == ("hh/v1/linyi/vehicles/v01/telemetry", b"own")
        # Under MQTT 3.1.1 a denied publish is acknowledged and silently dropped (spec 3.3.5).
        linyi.publish("hh/v1/xuzhou/vehicles/v01/telemetry", b"forged")
        linyi.publish("hh/v1/xuzhou/vehicles/v01/cmd", b"forged command")
        linyi.publish("hh/v1/linyi/linkage/jj110/events", b"forged event")
        linyi.publish("hh/v1/hub/main/state", b"forged hub state")
        assert _nothing_arrives(hub)
    finally:
        linyi.close()
        hub.close()


def test_vehicle_reads_only_its_own_commands(secured_broker) -> None:
    port, passwords = secured_broker
    linyi = Peer(port, "veh-linyi-v01", passwords["veh-linyi-v01"])
    assert linyi.accepted()
    granted = linyi.subscribe("hh/v1/linyi/vehicles/v01/cmd")
    assert not granted[0].is_failure  # type: ignore[attr-defined]
    linyi.subscribe("hh/v1/xuzhou/vehicles/v01/cmd")
    linyi.subscribe("hh/#")
    hub = Peer(port, "hub", HUB_PASSWORD)
    assert hub.accepted()
    try:
        hub.publish("hh/v1/xuzhou/vehicles/v01/cmd", b"for xuzhou")
        hub.publish("hh/v1/linyi/vehicles/v01/telemetry", b"someone else's traffic")
        hub.publish("hh/v1/linyi/vehicles/v01/cmd", b"for linyi")
        assert linyi.messages.get(timeout=5) == ("hh/v1/linyi/vehicles/v01/cmd", b"for linyi")
        assert _nothing_arrives(linyi)
    finally:
        linyi.close()
        hub.close()


def test_a_vehicle_cannot_take_reports_from_the_ingest_workers_share(secured_broker, tmp_path: Path) -> None:
    port, passwords = secured_broker
    settings = Settings(secret_key="k", instance_path=tmp_path, mqtt_password=HUB_PASSWORD)
    group = ingest_group(settings)
    assert HUB_PASSWORD not in group
    assert group != ingest_group(settings.with_overrides(mqtt_password="another"))
    worker = Peer(port, "hub", HUB_PASSWORD, protocol=mqtt.MQTTv5)
    assert worker.accepted()
    granted = worker.subscribe(f"$share/{group}/hh/v1/+/vehicles/+/telemetry")
    assert not granted[0].is_failure  # type: ignore[attr-defined]
    # Mosquitto grants any subscription and checks the ACL per message, dropping a shared message
    # it handed to a member that may not read it: a vehicle in the group would lose reports for
    # the hub. It can only join the groups it can name, and the workers' it cannot.
    snooper = Peer(port, "veh-xuzhou-v01", passwords["veh-xuzhou-v01"], protocol=mqtt.MQTTv5)
    assert snooper.accepted()
    for guess in ("hub-main-ingest", f"hub-main-ingest-{group[-20:-1]}0", "hub-ingest"):
        snooper.subscribe(f"$share/{guess}/hh/v1/+/vehicles/+/telemetry")
    linyi = Peer(port, "veh-linyi-v01", passwords["veh-linyi-v01"])
    assert linyi.accepted()
    try:
        for n in range(20):
            linyi.publish("hh/v1/linyi/vehicles/v01/telemetry", f"report {n}".encode())
        assert [worker.messages.get(timeout=5)[1] for _ in range(20)] == [
            f"report {n}".encode() for n in range(20)
        ]
        assert _nothing_arrives(snooper)
    finally:
        for peer in (worker, snooper, linyi):
            peer.close()


def test_acl_names_each_peer_explicitly(app, city) -> None:
    fleet.register_vehicle(db.session, ADMIN, city("heze"), "cmd-1", "菏泽1号")
    text = render_acl_file(db.session, "hub")
    assert "user veh-heze-cmd-1\ntopic write hh/v1/heze/vehicles/cmd-1/telemetry" in text
    assert "topic read hh-exercise/v1/heze/vehicles/cmd-1/cmd" in text
    assert "pattern" not in text and "%c" not in text


def test_acl_follows_the_configured_topic_root(app, city) -> None:
    fleet.register_vehicle(db.session, ADMIN, city("heze"), "cmd-1", "菏泽1号")
    text = render_acl_file(db.session, "hub", "zz")
    assert text.startswith("user hub\ntopic readwrite zz/#\ntopic readwrite zz-exercise/#\n")
    assert "topic write zz/v1/heze/vehicles/cmd-1/telemetry" in text
    assert "topic read zz-exercise/v1/heze/vehicles/cmd-1/cmd" in text
    assert "hh/" not in text


def test_a_city_edge_bridge_uses_only_its_own_city_on_the_regional_broker(
    app, city, make_mosquitto, tmp_path: Path
) -> None:
    bridge = EdgeBridge("xuzhou", "127.0.0.1", 1883, "bridge-secret")
    hub = HubCredentials("hub", mosquitto_hash(HUB_PASSWORD))
    password_file, acl_file = write_broker_files(
        db.session,
        tmp_path / "auth",
        hub,
        extra_accounts=[bridge_account(bridge, mosquitto_hash("bridge-secret"))],
    )
    assert "user bridge-xuzhou\ntopic write hh/v1/xuzhou/#\n" in acl_file.read_text()
    port = make_mosquitto(allow_anonymous=False, password_file=password_file, acl_file=acl_file).port
    hub_peer = Peer(port, "hub", HUB_PASSWORD)
    edge = Peer(port, "bridge-xuzhou", "bridge-secret")
    try:
        assert hub_peer.accepted() and edge.accepted()
        hub_peer.subscribe("hh/#")
        hub_peer.subscribe("hh-exercise/#")
        granted = edge.subscribe("hh/v1/xuzhou/#")
        assert not granted[0].is_failure  # type: ignore[attr-defined]
        edge.subscribe("hh/#")  # asks for every city; reads only its own
        edge.publish("hh-exercise/v1/xuzhou/vehicles/v01/telemetry", b"own")
        assert hub_peer.messages.get(timeout=5) == ("hh-exercise/v1/xuzhou/vehicles/v01/telemetry", b"own")
        hub_peer.publish("hh/v1/xuzhou/vehicles/v01/cmd", b"down")
        assert edge.messages.get(timeout=5) == ("hh/v1/xuzhou/vehicles/v01/cmd", b"down")
        assert hub_peer.messages.get(timeout=5) == ("hh/v1/xuzhou/vehicles/v01/cmd", b"down")  # its own
        # Another city's topics and the hub's own state are out of the bridge's reach.
        edge.publish("hh/v1/linyi/vehicles/v01/telemetry", b"forged")
        edge.publish("hh/v1/hub/main/state", b"forged hub state")
        assert _nothing_arrives(hub_peer)
        hub_peer.publish("hh/v1/linyi/vehicles/v01/cmd", b"not for xuzhou")
        assert _nothing_arrives(edge)
    finally:
        edge.close()
        hub_peer.close()


def test_an_edge_broker_gets_its_own_citys_accounts_and_no_hub(app, city, tmp_path: Path) -> None:
    fleet.register_vehicle(db.session, ADMIN, city("xuzhou"), "v01", "徐州1号")
    fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号")
    fleet.register_linkage_system(db.session, ADMIN, city("xuzhou"), "xz110", "110", "徐州110")
    password_file, acl_file = write_edge_broker_files(db.session, tmp_path / "edge", "xuzhou", "zz")
    users = [line.split(":", 1)[0] for line in password_file.read_text().splitlines()]
    assert users == ["veh-xuzhou-v01", "lnk-xuzhou-xz110"]
    acl = acl_file.read_text()
    assert acl.startswith("user veh-xuzhou-v01\ntopic write zz/v1/xuzhou/vehicles/v01/telemetry\n")
    assert "linyi" not in acl and "user hub" not in acl and "readwrite" not in acl
