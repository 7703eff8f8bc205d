"""The MQTT bridge with a real broker: telemetry stored once, commands out, acks back, crashes survived."""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from contracts.mqtt import (
    Ack,
    AckStage,
    ConnectionState,
    GotoAction,
    Telemetry,
    ack_topic,
    command_topic,
    decode_command,
    encode,
    hub_state_topic,
    hub_subscriptions,
    state_topic,
    telemetry_topic,
)
from flows.context import use_app
from flows.mqtt_bridge import MqttBridge
from hub.config import Settings
from hub.extensions import db
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, Vehicle, VehicleCommand, VehiclePosition
from hub.kernel.actors import Actor
from hub.kernel.models import DeadLetter, Role

# Not the default root: the topic root comes from settings everywhere (tests elsewhere use "hh").
ROOT = "hx"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's hub runs under the same non-default root as its peers."""
    return settings.with_overrides(mqtt_root=ROOT)


ADMIN = Actor("system", "tests", None, Role.ADMIN)


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


def count(model: type) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


class FakeVehicleClient:
    """A vehicle as a bare paho client with a persistent session."""

    def __init__(self, port: int, city: str, code: str) -> None:
        self.city, self.code = city, code
        self.commands: queue.Queue[bytes] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"veh-{city}-{code}", clean_session=False
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(command_topic(ROOT, city, code), qos=1)
        self.client.on_message = lambda c, u, m: self.commands.put(m.payload)
        self.port = port

    def start(self) -> FakeVehicleClient:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        return self

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def hub_bridge(app: Flask, city, mosquitto_broker) -> Iterator[Callable[[], tuple[MqttLink, MqttBridge]]]:
    use_app(app)
    fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号")
    db.session.commit()
    running: list[tuple[MqttLink, MqttBridge]] = []

    def start() -> tuple[MqttLink, MqttBridge]:
        link = MqttLink(
            MqttLinkConfig(
                url=mosquitto_broker.url,
                client_id="hub-test",
                state_topic=hub_state_topic(ROOT, "test"),
                subscriptions=hub_subscriptions(ROOT),
                reconnect_min_delay=0.1,
                reconnect_max_delay=0.5,
            )
        ).start()
        link.wait_connected(10)
        bridge = MqttBridge(link, root=ROOT, publish_poll=0.2)
        bridge.start()
        running.append((link, bridge))
        return link, bridge

    yield start
    for link, bridge in running:
        bridge.stop()
        link.stop()
    use_app(None)


def _telemetry(seq: int) -> bytes:
    return encode(
        Telemetry(
            vehicle="v01",
            lat=35.0 + seq / 1000,
            lon=118.3,
            speed_kmh=50.0,
            heading=10.0,
            at=datetime(2026, 11, 29, 2, 0, tzinfo=UTC).replace(microsecond=seq),
            seq=seq,
        )
    )


def test_telemetry_and_bad_payloads(hub_bridge, mosquitto_broker) -> None:
    hub_bridge()
    vehicle = FakeVehicleClient(mosquitto_broker.port, "linyi", "v01").start()
    try:
        for seq in range(20):
            vehicle.publish(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(seq))
        vehicle.publish(telemetry_topic(ROOT, "linyi", "v01"), b"{not json")
        vehicle.publish(
            telemetry_topic(ROOT, "linyi", "v01"), json.dumps({"vehicle": "v01", "lat": 91}).encode()
        )
        wait_for(
            lambda: count(VehiclePosition) == 20 and count(DeadLetter) == 2, what="20 rows, 2 dead letters"
        )
    finally:
        vehicle.stop()
    reasons = [d.reason for d in db.session.scalars(select(DeadLetter).order_by(DeadLetter.id))]
    assert "malformed JSON" in reasons[0]
    assert "lat" in reasons[1]
    stored = db.session.scalars(select(Vehicle)).one()
    assert stored.latitude == pytest.approx(35.019)


def test_command_out_and_acks_back(hub_bridge, mosquitto_broker, make_user) -> None:
    hub_bridge()
    vehicle = FakeVehicleClient(mosquitto_broker.port, "linyi", "v01").start()
    try:
        wait_for(lambda: vehicle.client.is_connected(), what="vehicle connected")
        time.sleep(0.3)  # let its subscription land
        actor = Actor.for_user(make_user("ly", "linyi"))
        stored = db.session.scalars(select(Vehicle)).one()
        command = commands.send_command(
            db.session, actor, stored.id, GotoAction(lat=35.1, lon=118.2), root=ROOT
        )
        db.session.commit()
        received = decode_command(vehicle.commands.get(timeout=10))
        assert received.id == command.command_id
        for stage in (AckStage.RECEIVED, AckStage.DONE, AckStage.DONE):
            vehicle.publish(
                ack_topic(ROOT, "linyi", "v01"),
                encode(Ack(command_id=received.id, stage=stage, at=datetime.now(UTC))),
            )

        def done() -> bool:
            db.session.expire_all()
            return db.session.get(VehicleCommand, command.id).state == CommandState.DONE

        wait_for(done, what="command done")
    finally:
        vehicle.stop()


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_hub_down_while_vehicles_publish_gets_every_message(hub_bridge, mosquitto_broker) -> None:
    link, bridge = hub_bridge()
    bridge.stop()
    link.stop()
    vehicle = FakeVehicleClient(mosquitto_broker.port, "linyi", "v01").start()
    try:
        for seq in range(200):
            vehicle.publish(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(seq))
        assert count(VehiclePosition) == 0
        hub_bridge()
        wait_for(lambda: count(VehiclePosition) == 200, what="all 200 queued messages stored")
    finally:
        vehicle.stop()


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_unacked_messages_are_redelivered_after_a_hub_crash(
    hub_bridge, mosquitto_broker, monkeypatch
) -> None:
    link, bridge = hub_bridge()
    # The hub "crashes" before committing: the writer raises, so nothing is acknowledged.
    calls = {"n": 0}
    original = bridge.write

    def failing_write(batch):
        calls["n"] += 1
        raise OperationalError("INSERT …", {}, Exception("database went away"))

    monkeypatch.setattr(bridge, "write", failing_write)
    vehicle = FakeVehicleClient(mosquitto_broker.port, "linyi", "v01").start()
    try:
        for seq in range(10):
            vehicle.publish(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(seq))
        wait_for(lambda: calls["n"] > 0, what="a failed write")
        bridge.stop()
        link._client.socket().close()  # die without a DISCONNECT, as a killed process would
        link._client.loop_stop()
        monkeypatch.setattr(bridge, "write", original)
        hub_bridge()
        wait_for(lambda: count(VehiclePosition) == 10, what="redelivered messages stored")
    finally:
        vehicle.stop()


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_broker_killed_and_restarted_mid_stream_loses_and_doubles_nothing(
    hub_bridge, mosquitto_broker, make_user
) -> None:
    hub_bridge()
    vehicle = FakeVehicleClient(mosquitto_broker.port, "linyi", "v01").start()
    actor = Actor.for_user(make_user("ly", "linyi"))
    stored = db.session.scalars(select(Vehicle)).one()
    sent_commands = []
    try:
        wait_for(lambda: vehicle.client.is_connected(), what="vehicle connected")
        for seq in range(300):
            vehicle.client.publish(telemetry_topic(ROOT, "linyi", "v01"), _telemetry(seq), qos=1)
            if seq % 50 == 0:
                sent_commands.append(
                    commands.send_command(
                        db.session, actor, stored.id, GotoAction(lat=35.0, lon=118.0), root=ROOT
                    ).command_id
                )
                db.session.commit()
            if seq == 150:
                mosquitto_broker.save()
                mosquitto_broker.kill()
                mosquitto_broker.restart()
            time.sleep(0.005)
        wait_for(lambda: count(VehiclePosition) == 300, timeout=30, what="all 300 telemetry rows")
        seen: set[uuid.UUID] = set()

        def all_commands_arrived() -> bool:
            while not vehicle.commands.empty():
                command = decode_command(vehicle.commands.get())
                if command.id not in seen:
                    seen.add(command.id)
                    vehicle.publish(
                        ack_topic(ROOT, "linyi", "v01"),
                        encode(Ack(command_id=command.id, stage=AckStage.DONE, at=datetime.now(UTC))),
                    )
            return seen == set(sent_commands)

        wait_for(all_commands_arrived, timeout=30, what="every command delivered")

        def all_done() -> bool:
            db.session.expire_all()
            states = db.session.scalars(select(VehicleCommand.state)).all()
            return states == [CommandState.DONE] * len(sent_commands)

        wait_for(all_done, timeout=30, what="every ack recorded")
    finally:
        vehicle.stop()
    assert count(VehiclePosition) == 300


def test_offline_vehicle_gets_queued_unexpired_commands_when_back(
    hub_bridge, mosquitto_broker, make_user
) -> None:
    hub_bridge()
    actor = Actor.for_user(make_user("ly", "linyi"))
    stored = db.session.scalars(select(Vehicle)).one()
    # The vehicle has never been online: the broker has no session to queue for it.
    live = commands.send_command(db.session, actor, stored.id, GotoAction(lat=35.0, lon=118.0), root=ROOT)
    stale = commands.send_command(db.session, actor, stored.id, GotoAction(lat=35.0, lon=118.0), root=ROOT)
    stale.expires_at = datetime.now(UTC)  # expired before anything could be published
    db.session.commit()
    vehicle = FakeVehicleClient(mosquitto_broker.port, "linyi", "v01").start()
    try:
        wait_for(lambda: vehicle.client.is_connected(), what="vehicle connected")
        time.sleep(0.3)
        vehicle.publish(state_topic(ROOT, "linyi", "v01"), encode(ConnectionState(online=True, session=1)))
        received = {decode_command(vehicle.commands.get(timeout=10)).id}
        time.sleep(0.5)
        while not vehicle.commands.empty():
            received.add(decode_command(vehicle.commands.get()).id)
    finally:
        vehicle.stop()
    assert live.command_id in received
    assert stale.command_id not in received
    db.session.expire_all()
    assert db.session.get(VehicleCommand, stale.id).state == CommandState.EXPIRED


def test_a_message_the_database_refuses_is_dead_lettered_and_the_rest_stored(hub_bridge) -> None:
    from connectors.mqtt_link import InboundMessage

    _, bridge = hub_bridge()
    bridge.stop()
    now = datetime.now(UTC)
    good = InboundMessage(
        telemetry_topic(ROOT, "linyi", "v01"), _telemetry(1), 1, False, 1, False, 0, now, 0.0
    )
    # A payload that passes the contract but breaks the database (here: a row the insert rejects).
    poison = InboundMessage(
        telemetry_topic(ROOT, "linyi", "v01"), _telemetry(2), 1, False, 2, False, 0, now, 0.0
    )
    original = bridge.write

    def write(batch):
        if any(m is poison for m in batch):
            raise ValueError("value out of range for the column")
        return original(batch)

    bridge.write = write  # type: ignore[method-assign]
    bridge._stop.clear()
    bridge._write_until_committed([good, poison])
    assert count(VehiclePosition) == 1
    letter = db.session.scalars(select(DeadLetter)).one()
    assert "refused by the database" in letter.reason
