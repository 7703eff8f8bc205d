"""Ingest workers on a real broker: the shared telemetry split between them, stored once, nothing stranded."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from contracts.mqtt import Telemetry, encode, telemetry_topic
from flows.context import use_app
from flows.ingest_worker import run_worker, settle_sessions, worker_client_id
from hub.config import Settings
from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import Vehicle, VehiclePosition
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.runtime import ManagedMosquitto, ManagedProcess, Supervisor
from tests.flows.test_mqtt_bridge import wait_for

# Not the default root: the topic root comes from settings everywhere (tests elsewhere use "hh").
ROOT = "hx"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's hub runs under the same non-default root as its peers."""
    return settings.with_overrides(mqtt_root=ROOT)


ADMIN = Actor("system", "tests", None, Role.ADMIN)
VEHICLES = ("v01", "v02", "v03")
START = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def worker_settings(
    app: Flask, settings: Settings, city, mosquitto_broker: ManagedMosquitto
) -> Iterator[Settings]:
    use_app(app)
    for code in VEHICLES:
        fleet.register_vehicle(db.session, ADMIN, city("huaibei"), code, code)
    db.session.commit()
    yield settings.with_overrides(mqtt_url=mosquitto_broker.url, hub_id="test")
    use_app(None)


class Workers:
    """Ingest workers as threads of the test, each with its own stop flag."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: dict[int, tuple[threading.Thread, threading.Event]] = {}
        self.counts: dict[int, Counter[str]] = {}

    def start(self, index: int) -> None:
        stop = threading.Event()

        def run() -> None:
            self.counts[index] = run_worker(self.settings, index, stop)

        thread = threading.Thread(target=run, name=f"test-ingest-{index}")
        thread.start()
        self.running[index] = (thread, stop)

    def stop(self, index: int) -> None:
        thread, stop = self.running.pop(index)
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), f"worker {index} did not stop"

    def stop_all(self) -> None:
        for index in list(self.running):
            self.stop(index)


@pytest.fixture
def workers(worker_settings: Settings) -> Iterator[Workers]:
    made = Workers(worker_settings)
    yield made
    made.stop_all()


def publish_telemetry(broker: ManagedMosquitto, count: int, first_seq: int = 0) -> None:
    """Publish `count` QoS 1 reports round the vehicles, each acknowledged by the broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = []
        for seq in range(first_seq, first_seq + count):
            code = VEHICLES[seq % len(VEHICLES)]
            report = Telemetry(
                vehicle=code,
                lat=34.0 + seq / 10_000,
                lon=116.8,
                speed_kmh=30.0,
                heading=90.0,
                at=START + timedelta(seconds=seq),
                seq=seq,
            )
            infos.append(client.publish(telemetry_topic(ROOT, "huaibei", code), encode(report), qos=1))
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def stored() -> tuple[int, int]:
    """Return the rows of position history, and how many distinct (vehicle, seq) among them."""
    db.session.expire_all()
    rows = db.session.scalar(select(func.count()).select_from(VehiclePosition)) or 0
    distinct = db.session.scalar(
        select(func.count()).select_from(
            select(VehiclePosition.vehicle_id, VehiclePosition.seq).distinct().subquery()
        )
    )
    return rows, distinct or 0


def session_present(broker: ManagedMosquitto, client_id: str) -> bool:
    """Connect as client_id without starting clean and say whether the broker kept a session."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    answer: list[bool] = []
    client.on_connect = lambda _c, _u, flags, _rc, _p: answer.append(flags.session_present)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 60
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    client.loop_start()
    wait_for(lambda: answer, 5, "a CONNACK")
    ending = Properties(PacketTypes.DISCONNECT)
    ending.SessionExpiryInterval = 0
    client.disconnect(properties=ending)
    client.loop_stop()
    return answer[0]


def test_two_workers_split_the_reports_and_store_each_once(
    worker_settings, workers, mosquitto_broker, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    settle_sessions(worker_settings, 2)
    workers.start(0)
    workers.start(1)
    publish_telemetry(mosquitto_broker, 600)
    wait_for(lambda: stored()[0] >= 600, 30, "600 stored reports")
    workers.stop_all()

    assert stored() == (600, 600)
    # No batch had to be retried: two writers on the same vehicles must not deadlock.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert workers.counts[0]["telemetry"] > 0 and workers.counts[1]["telemetry"] > 0, workers.counts
    assert workers.counts[0]["telemetry"] + workers.counts[1]["telemetry"] == 600
    # Stored as the ORM stores times: read back aware and equal.
    assert db.session.scalar(select(func.max(VehiclePosition.at))) == START + timedelta(seconds=599)
    # The latest position is each vehicle's newest report, whichever worker wrote it.
    db.session.expire_all()
    for vehicle in db.session.scalars(select(Vehicle)):
        newest = max(seq for seq in range(600) if VEHICLES[seq % 3] == vehicle.code)
        assert vehicle.position_at == START + timedelta(seconds=newest)


def test_reports_queued_for_a_worker_no_longer_wanted_are_stored_and_its_session_ended(
    worker_settings, workers, mosquitto_broker
) -> None:
    settle_sessions(worker_settings, 2)
    workers.start(0)
    # Worker 1 is away with its session: the broker queues its share of these for it.
    publish_telemetry(mosquitto_broker, 300)
    wait_for(lambda: 0 < stored()[0] < 300, 15, "worker 0's share stored")

    retired = settle_sessions(worker_settings, 1)

    assert retired > 0
    wait_for(lambda: stored()[0] == 300, 15, "all 300 reports stored")
    assert stored() == (300, 300)
    assert not session_present(mosquitto_broker, worker_client_id("test", 1))
    # From now on worker 0 alone gets every report.
    publish_telemetry(mosquitto_broker, 30, first_seq=300)
    wait_for(lambda: stored()[0] == 330, 15, "the next 30 reports stored")


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_a_killed_worker_process_is_restarted_and_loses_nothing(
    worker_settings: Settings, mosquitto_broker, tmp_path
) -> None:
    settle_sessions(worker_settings, 1)
    worker = ManagedProcess(
        [sys.executable, "-m", "web", "mqtt", "ingest-worker", "--index", "0"],
        log_path=tmp_path / "worker.log",
        env={**os.environ, **worker_settings.process_env()},
        name="ingest-worker-0",
    )
    supervisor = Supervisor([worker], check_every=0.2).start()
    try:
        publish_telemetry(mosquitto_broker, 200)
        wait_for(
            lambda: stored()[0] == 200, 60, f"200 reports stored by the worker process: {worker.log_tail()}"
        )
        os.kill(worker.pid or 0, signal.SIGKILL)
        # Published while the worker is dead: the broker queues them for its session.
        publish_telemetry(mosquitto_broker, 200, first_seq=200)
        wait_for(lambda: supervisor.restarts == 1, 15, "the worker restarted")
        wait_for(lambda: stored()[0] == 400, 60, f"400 reports stored: {worker.log_tail()}")
        assert stored() == (400, 400)
    finally:
        supervisor.stop()
    assert worker.returncode == 0, worker.log_tail()
