"""A city-edge broker bridged to the regional broker: an outage of either loses and doubles nothing.

The hub's MQTT link and bridge run on the regional broker, a simulated vehicle on its city's
edge broker, and the edge broker's bridge (hub.runtime.edge_broker) joins the two. Both brokers
refuse anonymous clients: the regional one with the files the hub writes (the bridge's account
included), the edge one with the vehicle's account.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from connectors.mqtt_link import MqttLink, MqttLinkConfig
from connectors.sims.vehicles import SimulatedVehicle, SimVehicleSpec
from contracts.mqtt import ReportPositionAction, hub_state_topic, hub_subscriptions
from flows.context import use_app
from flows.mqtt_bridge import MqttBridge
from hub.config import Settings
from hub.extensions import db
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.fleet.models import CommandState, Vehicle, VehicleCommand, VehiclePosition
from hub.kernel.actors import Actor
from hub.kernel.broker_auth import (
    HubCredentials,
    mosquitto_hash,
    new_secret,
    write_broker_files,
    write_edge_broker_files,
)
from hub.kernel.models import Role
from hub.runtime import ManagedMosquitto
from hub.runtime.edge_broker import EdgeBridge, bridge_account, bridge_config_lines
from tests.fixtures.mosquitto import MakeMosquitto

ROOT = "hh"
CITY = "xuzhou"
ADMIN = Actor("system", "tests", None, Role.ADMIN)
# How long a broker stays down; issue 15 asks for 60 s, which HUB_TEST_OUTAGE_SECONDS=60 gives.
OUTAGE = float(os.environ.get("HUB_TEST_OUTAGE_SECONDS", "20"))
# Generous: the machine that runs the suite is shared and loaded.
TIMEOUT = 60.0
RUN_AS = {"user": "root"} if os.geteuid() == 0 else {}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The hub and the bridge share one topic root."""
    return settings.with_overrides(mqtt_root=ROOT)


def wait_for(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout} s")


def stored_seqs() -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(select(VehiclePosition.seq).order_by(VehiclePosition.seq)))


class Region:
    """The regional broker with the hub on it, the city's edge broker bridged to it, a vehicle."""

    def __init__(self, make_mosquitto: MakeMosquitto, auth_dir: Path, vehicle_password: str) -> None:
        hub_password = new_secret()
        bridge_password = new_secret()
        regional_files = write_broker_files(
            db.session,
            auth_dir / "regional",
            HubCredentials("hub", mosquitto_hash(hub_password)),
            ROOT,
            extra_accounts=[
                bridge_account(
                    EdgeBridge(CITY, "127.0.0.1", 0, bridge_password), mosquitto_hash(bridge_password)
                )
            ],
        )
        self.regional = make_mosquitto(
            allow_anonymous=False, password_file=regional_files[0], acl_file=regional_files[1], **RUN_AS
        )
        self.bridge = EdgeBridge(CITY, self.regional.host, self.regional.port, bridge_password, root=ROOT)
        # The edge broker carries its city's accounts only (the vehicle's), and no hub account.
        edge_files = write_edge_broker_files(db.session, auth_dir / "edge", CITY, ROOT)
        self.edge = make_mosquitto(
            allow_anonymous=False,
            password_file=edge_files[0],
            acl_file=edge_files[1],
            extra=bridge_config_lines(self.bridge),
            **RUN_AS,
        )
        self.link = MqttLink(
            MqttLinkConfig(
                url=self.regional.url,
                client_id="hub-test",
                state_topic=hub_state_topic(ROOT, "test"),
                subscriptions=hub_subscriptions(ROOT),
                username="hub",
                password=hub_password,
                reconnect_min_delay=0.1,
                reconnect_max_delay=0.5,
            )
        ).start()
        self.link.wait_connected(TIMEOUT)
        self.hub = MqttBridge(self.link, root=ROOT, publish_poll=0.2)
        self.hub.start()
        spec = SimVehicleSpec(CITY, "v01", f"veh-{CITY}-v01", vehicle_password, (117.185, 34.262))
        self.vehicle = SimulatedVehicle(
            spec,
            self.edge.url,
            root=ROOT,
            rate_hz=5.0,
            qos=1,
            keepalive=5,
            reconnect_min_delay=0.1,
            reconnect_max_delay=0.5,
        ).start()
        self.vehicle.wait_connected(TIMEOUT)

    def close(self) -> None:
        self.vehicle.stop()
        self.hub.stop()
        self.link.stop()


@pytest.fixture
def region(app: Flask, city, make_mosquitto: MakeMosquitto, tmp_path: Path) -> Iterator[Region]:
    use_app(app)
    _, password = fleet.register_vehicle(db.session, ADMIN, city(CITY), "v01", "徐州1号")
    db.session.commit()
    made = Region(make_mosquitto, tmp_path / "auth", password)
    try:
        yield made
    finally:
        made.close()
        use_app(None)


def _command_state(command_id: int) -> str:
    db.session.expire_all()
    return db.session.get(VehicleCommand, command_id).state


def _published(command_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(VehicleCommand, command_id).publish_count > 0


def test_reports_go_up_and_a_command_comes_down_the_bridge(region: Region, make_user) -> None:
    wait_for(lambda: len(stored_seqs()) >= 3, "reports through the bridge")
    actor = Actor.for_user(make_user("xz", CITY))
    vehicle = db.session.scalars(select(Vehicle)).one()
    command = commands.send_command(db.session, actor, vehicle.id, ReportPositionAction(), root=ROOT)
    db.session.commit()
    wait_for(lambda: _command_state(command.id) == CommandState.DONE, "the command done")
    seqs = stored_seqs()
    # Each report crossed the bridge once: no echo came back down and up again.
    assert seqs == list(range(len(seqs)))
    assert "protocol error" not in region.regional.log_tail(200)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
@pytest.mark.parametrize("down", ["edge", "regional"])
def test_a_broker_down_for_a_while_loses_and_doubles_nothing(region: Region, make_user, down: str) -> None:
    """The city's broker (or the regional one, and with it the bridge) goes away mid-stream.

    Meanwhile the vehicle keeps reporting at QoS 1 (its client or its edge broker queues the
    reports) and the hub sends it a command (queued by the regional broker for the bridge's
    session, or in the hub's outbox). Once the broker is back, every report is stored exactly
    once, the command reaches the vehicle and its acks reach the hub.
    """
    broker: ManagedMosquitto = region.edge if down == "edge" else region.regional
    wait_for(lambda: len(stored_seqs()) >= 5, "reports before the outage")
    actor = Actor.for_user(make_user("xz", CITY))
    vehicle = db.session.scalars(select(Vehicle)).one()

    broker.stop()
    went_down = time.monotonic()
    command = commands.send_command(db.session, actor, vehicle.id, ReportPositionAction(), root=ROOT)
    db.session.commit()
    if down == "edge":
        # The regional broker took the command for the bridge's session while the city was away.
        wait_for(lambda: _published(command.id), "the command published to the regional broker")
    # Reports already past the broker when it stopped may still land in the first seconds.
    wait_for(lambda: time.monotonic() - went_down >= OUTAGE / 2, "half the outage", timeout=OUTAGE + TIMEOUT)
    stored_midway = len(stored_seqs())
    wait_for(lambda: time.monotonic() - went_down >= OUTAGE, "the outage", timeout=OUTAGE + TIMEOUT)
    assert len(stored_seqs()) == stored_midway, "reports went through while the path was down"
    assert _command_state(command.id) == CommandState.PENDING
    reports_made = region.vehicle.next_seq
    assert reports_made > stored_midway + OUTAGE, "the vehicle did not keep reporting"
    broker.start()

    wait_for(lambda: _command_state(command.id) == CommandState.DONE, "the command done after recovery")
    # Every report made before and during the outage arrives, and some made after it.
    wait_for(lambda: len(stored_seqs()) > reports_made + 5, "the queued reports stored")
    seqs = stored_seqs()
    assert seqs == list(range(len(seqs))), "a report is missing or stored twice"
    db.session.expire_all()
    done = db.session.get(VehicleCommand, command.id)
    assert done.acked_at is not None
    count = db.session.scalar(select(func.count()).select_from(VehicleCommand))
    assert count == 1
