"""A dispatch system's event over MQTT becomes an incident, notifies neighbours, and their linkage
systems get a joint alert back over MQTT."""

from __future__ import annotations

import queue
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from contracts.mqtt import (
    LinkageEvent,
    decode_joint_alert,
    encode,
    hub_state_topic,
    hub_subscriptions,
    linkage_alerts_topic,
    linkage_events_topic,
)
from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from flows.mqtt_bridge import MqttBridge
from hub.config import Settings
from hub.extensions import db
from hub.fleet import services as fleet
from hub.incidents.models import Incident
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from tests.flows.test_mqtt_bridge import wait_for

# Not the default root: the topic root comes from settings everywhere (tests elsewhere use "hh").
ROOT = "hx"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's hub runs under the same non-default root as its peers."""
    return settings.with_overrides(mqtt_root=ROOT)


ADMIN = Actor("system", "tests", None, Role.ADMIN)
pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_linkage_event_to_incident_to_joint_alert(app, city, mosquitto_broker) -> None:
    use_app(app)
    fleet.register_linkage_system(db.session, ADMIN, city("linyi"), "fire119", "119", "临沂119")
    fleet.register_linkage_system(db.session, ADMIN, city("xuzhou"), "police110", "110", "徐州110")
    db.session.commit()
    link = MqttLink(
        MqttLinkConfig(
            url=mosquitto_broker.url,
            client_id="hub-test",
            state_topic=hub_state_topic(ROOT, "test"),
            subscriptions=hub_subscriptions(ROOT),
        )
    ).start()
    link.wait_connected(10)
    bridge = MqttBridge(link, root=ROOT, publish_poll=0.2)
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    bridge.start()
    dispatcher.start()
    alerts: queue.Queue[bytes] = queue.Queue()
    xuzhou_110 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lnk-xuzhou-police110")
    xuzhou_110.on_message = lambda c, u, m: alerts.put(m.payload)
    xuzhou_110.connect("127.0.0.1", mosquitto_broker.port)
    xuzhou_110.subscribe(linkage_alerts_topic(ROOT, "xuzhou", "police110"), qos=1)
    xuzhou_110.loop_start()
    try:
        event = LinkageEvent.model_validate(
            {
                "event_id": "119-20261129-0007",
                "system": "119",
                "category": "accident_disaster",
                "level": "II",
                "title": "临沂化工园区爆炸起火",
                "location": "临沂经开区",
                "occurred_at": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
                "affected_cities": ["linyi"],
            }
        )
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="lnk-linyi-fire119")
        publisher.connect("127.0.0.1", mosquitto_broker.port)
        publisher.loop_start()
        publisher.publish(
            linkage_events_topic(ROOT, "linyi", "fire119"), encode(event), qos=1
        ).wait_for_publish(5)
        alert = decode_joint_alert(alerts.get(timeout=30))
        publisher.disconnect()
        publisher.loop_stop()

        def one_incident() -> bool:
            db.session.expire_all()
            return len(db.session.scalars(select(Incident)).all()) == 1

        wait_for(one_incident, what="one incident")
        incident = db.session.scalars(select(Incident)).one()
        assert alert.incident_id == incident.public_id
        assert (alert.title, alert.reporting_city, alert.exercise) == ("临沂化工园区爆炸起火", "linyi", False)
    finally:
        xuzhou_110.disconnect()
        xuzhou_110.loop_stop()
        dispatcher.stop()
        bridge.stop()
        link.stop()
        use_app(None)
