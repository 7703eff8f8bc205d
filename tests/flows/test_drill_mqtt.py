"""A drill played through the real MQTT path: everything under the exercise root, nothing live."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from sqlalchemy import select

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from contracts.drills import DrillPlan, ExpectedAction
from contracts.mqtt import (
    Ack,
    AckStage,
    ack_topic,
    command_topic,
    decode_command,
    encode,
    exercise_root,
    hub_state_topic,
    hub_subscriptions,
)
from flows.context import use_app
from flows.mqtt_bridge import MqttBridge
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, VehicleCommand
from hub.incidents import services as incidents
from hub.kernel.actors import Actor
from hub.kernel.models import MqttOutbox, Role, User
from hub.kernel.types import utcnow
from tests.flows.test_mqtt_bridge import wait_for
from tests.hub.drills.conftest import plan_data

ROOT = "hh"
ADMIN = Actor("system", "tests", None, Role.ADMIN)
MSEL = (
    "number,offset,city,vehicle,linkage_system,channel,message,expected_action,expected_within\r\n"
    "1,0:00:00,linyi,v01,,mqtt_vehicle,指挥车前出至沂河大桥,command_acked,0:10:00\r\n"
    "2,0:00:00,linyi,,fire119,mqtt_linkage,沂河大桥险情,,\r\n"
    "3,0:00:00,linyi,,,warning,沂河上游强降雨,receipt_signed,0:30:00\r\n"
    "4,0:00:00,linyi,,,incident,沂河大桥管涌,,\r\n"
    "5,0:00:00,linyi,v02,,mqtt_vehicle,指挥车待命,command_acked,0:10:00\r\n"
)


class Listener:
    """A bare paho client subscribed to one filter, collecting (topic, payload)."""

    def __init__(self, port: int, topic_filter: str, client_id: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def drain(self) -> list[tuple[str, bytes]]:
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def bridge(app: Flask, city, mosquitto_broker) -> Iterator[None]:
    use_app(app)
    fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号")
    fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v02", "临沂2号")
    fleet.register_linkage_system(db.session, ADMIN, city("linyi"), "fire119", "119", "临沂119")
    db.session.commit()
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
    running = MqttBridge(link, root=ROOT, publish_poll=0.1)
    running.start()
    yield
    running.stop()
    link.stop()
    use_app(None)


def _drill(make_user: Callable[..., User]) -> Drill:
    actor = Actor.for_user(make_user("controller", "xuzhou"))
    start = utcnow().replace(microsecond=0) + timedelta(hours=1)
    drill = services.create(db.session, actor, DrillPlan.model_validate(plan_data(startex=start)))
    services.import_msel(db.session, actor, drill.id, MSEL.encode())
    services.approve(db.session, actor, drill.id)
    db.session.commit()
    return drill


def test_a_drill_publishes_nothing_under_the_live_root(
    bridge: None, mosquitto_broker, make_user: Callable[..., User]
) -> None:
    live = Listener(mosquitto_broker.port, f"{ROOT}/#", "live-listener")
    drill_root = Listener(mosquitto_broker.port, f"{exercise_root(ROOT)}/#", "exercise-listener")
    vehicle_commands: queue.Queue[bytes] = queue.Queue()
    vehicle = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="veh-linyi-v01")
    vehicle.on_message = lambda c, u, m: vehicle_commands.put(m.payload)
    vehicle.connect("127.0.0.1", mosquitto_broker.port)
    vehicle.subscribe(command_topic(ROOT, "linyi", "v01", exercise=True), qos=1)
    vehicle.loop_start()
    try:
        live_before = incidents.open_counts_by_level(db.session)
        drill = _drill(make_user)
        assert services.start(db.session, drill.id)
        for number in range(1, 6):
            assert services.deliver(db.session, drill.id, number, mqtt_root=ROOT).outcome == "delivered"
        db.session.commit()

        def all_published() -> bool:
            db.session.expire_all()
            return all(m.published_at for m in db.session.scalars(select(MqttOutbox)))

        wait_for(all_published, what="every outbox message published")
        command = decode_command(vehicle_commands.get(timeout=10))
        assert command.action.title.startswith("【演练】")  # type: ignore[union-attr]
        vehicle.publish(
            ack_topic(ROOT, "linyi", "v01", exercise=True),
            encode(Ack(command_id=command.id, stage=AckStage.DONE, at=datetime.now(UTC))),
            qos=1,
        ).wait_for_publish(timeout=10)

        def acked() -> bool:
            db.session.expire_all()
            state = db.session.scalar(
                select(VehicleCommand.state).where(VehicleCommand.command_id == command.id)
            )
            return state == CommandState.DONE

        wait_for(acked, what="the exercise ack applied")
        measure = next(m for m in services.measures(db.session, drill) if m.number == 1)
        assert measure.expected_action is ExpectedAction.COMMAND_ACKED and measure.in_time is True

        assert services.end(db.session, drill.id)
        db.session.commit()
        db.session.expire_all()
        states = {c.state for c in db.session.scalars(select(VehicleCommand)) if c.command_id != command.id}
        assert states == {CommandState.EXPIRED}
        assert all(c.exercise for c in db.session.scalars(select(VehicleCommand)))
        assert incidents.open_counts_by_level(db.session) == live_before
    finally:
        vehicle.disconnect()
        vehicle.loop_stop()
    exercise_topics = sorted({topic for topic, _ in drill_root.drain()})
    live_messages = [
        (topic, payload) for topic, payload in live.drain() if topic != hub_state_topic(ROOT, "test")
    ]
    live.stop()
    drill_root.stop()
    # The hub's own presence is live and retained; drill traffic never is.
    assert live_messages == []
    assert f"{exercise_root(ROOT)}/v1/linyi/vehicles/v01/cmd" in exercise_topics
    assert f"{exercise_root(ROOT)}/v1/linyi/vehicles/v02/cmd" in exercise_topics
    assert f"{exercise_root(ROOT)}/v1/linyi/linkage/fire119/alerts" in exercise_topics
    assert all(topic.startswith(f"{exercise_root(ROOT)}/") for topic in exercise_topics)
