"""Simulated vehicles against a real Mosquitto: reports, commands and acks, drop-offs, fleets, controls."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from connectors.sims.vehicles import (
    Fleet,
    LonLat,
    SimulatedVehicle,
    SimVehicleSpec,
    distance_km,
    load_city_centres,
    run_fleet_from_file,
)
from contracts.mqtt import (
    Ack,
    AckStage,
    Command,
    ConnectionState,
    GotoAction,
    OpenVideoAction,
    Payload,
    ReportPositionAction,
    SetStatusAction,
    Telemetry,
    TopicKind,
    VehicleState,
    VehicleStatus,
    command_topic,
    decode_message,
    encode,
)
from hub.runtime import ManagedMosquitto

TIMEOUT = 5.0
CITIES: dict[str, LonLat] = {"xuzhou": (117.185, 34.262), "suqian": (118.275, 33.963)}
SPEC = SimVehicleSpec("xuzhou", "xz-cmd-01", None, None, (117.185, 34.262))
CMD_TOPIC = command_topic("hh", "xuzhou", "xz-cmd-01")
PROTOCOLS = pytest.mark.parametrize("protocol", ["3.1.1", "5"])
# A period far longer than a test: any telemetry a test sees then answered a command.
RARELY = 0.001

M = TypeVar("M", bound=Payload)


@dataclass(frozen=True)
class Seen:
    """One message the test hub received, decoded by its topic."""

    kind: TopicKind
    device: str
    model: Payload
    retain: bool


class Hub:
    """A bare paho client standing in for the hub: records every vehicle message and sends commands."""

    def __init__(self, broker: ManagedMosquitto, client_id: str = "test-hub") -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._subscribed = threading.Event()
        self._paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self._paho.on_connect = lambda client, *_: client.subscribe("hh/v1/+/vehicles/+/+", qos=1)
        self._paho.on_subscribe = lambda *_: self._subscribed.set()
        self._paho.on_message = self._on_message
        self._paho.connect(broker.host, broker.port)
        self._paho.loop_start()
        assert self._subscribed.wait(TIMEOUT), "test hub got no SUBACK"

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/cmd"):
            return
        address, model = decode_message(message.topic, bytes(message.payload))
        with self._lock:
            self._seen.append(Seen(address.kind, address.device, model, bool(message.retain)))

    def seen(self, kind: TopicKind) -> list[Seen]:
        """Return what arrived on topics of this kind, in order."""
        with self._lock:
            return [item for item in self._seen if item.kind is kind]

    def of(self, model: type[M]) -> list[M]:
        """Return the payloads of one model that arrived, in order."""
        with self._lock:
            return [found for item in self._seen if isinstance(found := item.model, model)]

    def acks(self, command_id: uuid.UUID) -> list[AckStage]:
        """Return the stages acked for one command, in order."""
        return [ack.stage for ack in self.of(Ack) if ack.command_id == command_id]

    def states(self) -> list[tuple[str, ConnectionState]]:
        """Return (vehicle, connection state) as they arrived."""
        return [
            (item.device, item.model)
            for item in self.seen(TopicKind.STATE)
            if isinstance(item.model, ConnectionState)
        ]

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        """Poll `condition` until it holds, failing after `timeout`."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
            time.sleep(0.01)

    def send(self, command: Command | bytes, topic: str = CMD_TOPIC) -> None:
        """Publish a command (or raw bytes) at QoS 1 and wait for the broker's PUBACK."""
        payload = command if isinstance(command, bytes) else encode(command)
        info = self._paho.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def close(self) -> None:
        """Disconnect."""
        self._paho.disconnect()
        self._paho.loop_stop()


def command(action: object, *, expires_in: float = 60.0, issued_ago: float = 0.0) -> Command:
    """Return a command with a fresh id."""
    issued = datetime.now(UTC) - timedelta(seconds=issued_ago)
    return Command.model_validate(
        {
            "id": uuid.uuid4(),
            "action": action,
            "issued_at": issued,
            "expires_at": issued + timedelta(seconds=expires_in),
        }
    )


@pytest.fixture
def hubs(mosquitto_broker: ManagedMosquitto) -> Iterator[Callable[..., Hub]]:
    """Return a maker of test hubs on the broker, closed at teardown."""
    made: list[Hub] = []

    def make(client_id: str = "test-hub") -> Hub:
        made.append(Hub(mosquitto_broker, client_id))
        return made[-1]

    yield make
    for hub in made:
        hub.close()


@pytest.fixture
def vehicles(mosquitto_broker: ManagedMosquitto) -> Iterator[Callable[..., SimulatedVehicle]]:
    """Return a maker of simulated vehicles on the broker, stopped at teardown."""
    made: list[SimulatedVehicle] = []

    def make(spec: SimVehicleSpec = SPEC, **options: Any) -> SimulatedVehicle:
        settings: dict[str, Any] = {
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 0.5,
            "keepalive": 5,
        }
        vehicle = SimulatedVehicle(spec, mosquitto_broker.url, **(settings | options))
        made.append(vehicle)
        return vehicle

    yield make
    for vehicle in made:
        vehicle.stop()


# Driving ---------------------------------------------------------------------------------------


def _standing_vehicle(now: list[float]) -> SimulatedVehicle:
    return SimulatedVehicle(SPEC, "mqtt://127.0.0.1:1", clock=lambda: now[0])


def test_stands_still_on_standby() -> None:
    now = [0.0]
    vehicle = _standing_vehicle(now)
    now[0] = 3600.0
    vehicle.tick()
    assert vehicle.position == SPEC.home
    assert (vehicle.status, vehicle.speed_kmh) == (VehicleState.STANDBY, 0.0)


def test_a_goto_drives_there_at_road_speed_then_stands_on_scene() -> None:
    now = [0.0]
    vehicle = _standing_vehicle(now)
    suqian = CITIES["suqian"]
    goto = command(GotoAction(lat=suqian[1], lon=suqian[0], note="宿迁集结").model_dump())
    vehicle._handle(goto)
    assert (vehicle.status, 60.0 <= vehicle.speed_kmh <= 90.0) == (VehicleState.EN_ROUTE, True)
    now[0] = 1800.0  # half an hour at 60-90 km/h: 30-45 km toward Suqian, east-south-east
    vehicle.tick()
    lon, lat = vehicle.position
    assert 117.185 < lon < 118.275 and 33.963 < lat < 34.262
    assert 30.0 <= distance_km(SPEC.home, (lon, lat)) <= 45.0
    assert vehicle.status is VehicleState.EN_ROUTE
    now[0] = 3 * 3600.0  # long enough to arrive: it stops there
    vehicle.tick()
    assert vehicle.position == suqian
    assert (vehicle.status, vehicle.speed_kmh) == (VehicleState.ON_SCENE, 0.0)
    now[0] += 3600.0
    vehicle.tick()
    assert vehicle.position == suqian


def test_returning_drives_home_and_stands_by_there() -> None:
    now = [0.0]
    vehicle = _standing_vehicle(now)
    vehicle._handle(command(GotoAction(lat=34.1, lon=117.4).model_dump()))
    now[0] = 3600.0
    vehicle.tick()
    assert vehicle.status is VehicleState.ON_SCENE
    vehicle._handle(command(SetStatusAction(status=VehicleState.RETURNING).model_dump()))
    assert vehicle.speed_kmh > 0
    now[0] = 2 * 3600.0
    vehicle.tick()
    assert (vehicle.position, vehicle.status, vehicle.speed_kmh) == (SPEC.home, VehicleState.STANDBY, 0.0)


# Reports ---------------------------------------------------------------------------------------


@PROTOCOLS
def test_reports_online_status_and_telemetry_at_its_rate(
    protocol: str, hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicle = vehicles(rate_hz=10.0, protocol=protocol).start()
    vehicle.wait_connected(TIMEOUT)
    began = time.monotonic()
    hub.wait(lambda: len(hub.of(Telemetry)) >= 11, "eleven telemetry reports")
    # Ten periods of 0.1 s; generous bounds, since the first report may come at any phase.
    assert 0.8 <= time.monotonic() - began <= 2.0

    reports = hub.of(Telemetry)
    seqs = [report.seq for report in reports]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # On standby it stands at home.
    assert all(r.vehicle == "xz-cmd-01" and r.speed_kmh == 0.0 for r in reports)
    assert {(r.lon, r.lat) for r in reports} == {SPEC.home}
    assert all(-90 <= r.lat <= 90 and -180 <= r.lon <= 180 and 0 <= r.heading <= 360 for r in reports)

    # A hub that connects later learns state and status from the retained messages.
    late = hubs("late-hub")
    late.wait(lambda: bool(late.states() and late.of(VehicleStatus)), "retained state and status")
    assert all(item.retain for kind in (TopicKind.STATE, TopicKind.STATUS) for item in late.seen(kind))
    (_, state), status = late.states()[0], late.of(VehicleStatus)[0]
    assert state.online and state.session == vehicle.session and state.at is not None
    assert status.state is VehicleState.STANDBY


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_reports_again_after_a_broker_restart(
    mosquitto_broker: ManagedMosquitto, vehicles: Callable[..., SimulatedVehicle]
) -> None:
    vehicle = vehicles(rate_hz=5.0).start()
    vehicle.wait_connected(TIMEOUT)
    first = vehicle.session
    mosquitto_broker.restart()
    vehicle.wait_connected(TIMEOUT)
    assert vehicle.session > first


# Commands --------------------------------------------------------------------------------------


@PROTOCOLS
def test_obeys_commands_and_acks_received_then_done(
    protocol: str, hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicle = vehicles(rate_hz=RARELY, protocol=protocol).start()
    vehicle.wait_connected(TIMEOUT)

    goto = command({"kind": "goto", "lat": 34.0, "lon": 117.5, "note": "沂河堤防"})
    hub.send(goto)
    hub.wait(
        lambda: any(s.state is VehicleState.EN_ROUTE and s.note == "沂河堤防" for s in hub.of(VehicleStatus)),
        "en_route status",
    )
    # Received, but not done: the vehicle has not arrived (it never ticks here).
    assert hub.acks(goto.id) == [AckStage.RECEIVED]
    assert vehicle.status is VehicleState.EN_ROUTE

    report = command(ReportPositionAction().model_dump())
    hub.send(report)
    hub.wait(lambda: hub.acks(report.id) == [AckStage.RECEIVED, AckStage.DONE], "report_position acked")
    hub.wait(lambda: len(hub.of(Telemetry)) == 1, "telemetry on demand")
    lon, lat = vehicle.position
    assert (hub.of(Telemetry)[0].lon, hub.of(Telemetry)[0].lat) == (round(lon, 6), round(lat, 6))

    out = command(SetStatusAction(status=VehicleState.OUT_OF_SERVICE).model_dump())
    hub.send(out)
    hub.wait(lambda: hub.acks(out.id) == [AckStage.RECEIVED, AckStage.DONE], "set_status acked")
    assert hub.of(VehicleStatus)[-1].state is VehicleState.OUT_OF_SERVICE
    # The goto it was driving for will never arrive: it says so.
    assert hub.acks(goto.id) == [AckStage.RECEIVED, AckStage.REJECTED]
    assert {ack.command_id: ack.reason for ack in hub.of(Ack)}[goto.id] == f"superseded by command {out.id}"
    assert vehicle.speed_kmh == 0.0


def test_goto_arrives_on_scene(hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]) -> None:
    hub = hubs()
    # About 25 km at 60-90 km/h, 3,000 times faster: 0.3-0.5 s of driving.
    vehicle = vehicles(rate_hz=20.0, speedup=3_000.0).start()
    vehicle.wait_connected(TIMEOUT)
    goto = command(GotoAction(lat=34.1, lon=117.4).model_dump())
    hub.send(goto)
    hub.wait(lambda: vehicle.status is VehicleState.ON_SCENE, "arrival on scene")
    assert vehicle.position == (117.4, 34.1)
    hub.wait(lambda: hub.acks(goto.id) == [AckStage.RECEIVED, AckStage.DONE], "goto done on arrival")
    states = [s.state for s in hub.of(VehicleStatus)]
    assert states[-2:] == [VehicleState.EN_ROUTE, VehicleState.ON_SCENE]
    # While en route it reported road speeds and moved; once there it stands at 0 km/h.
    reports = hub.of(Telemetry)
    moving = [t for t in reports if t.speed_kmh > 0]
    assert moving and all(60.0 <= t.speed_kmh <= 90.0 for t in moving)
    assert len({(t.lon, t.lat) for t in moving}) > 1
    hub.wait(lambda: hub.of(Telemetry)[-1].speed_kmh == 0.0, "a standing report")
    assert (hub.of(Telemetry)[-1].lon, hub.of(Telemetry)[-1].lat) == (117.4, 34.1)


def test_en_route_without_a_destination_is_refused(
    hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicle = vehicles(rate_hz=RARELY).start()
    vehicle.wait_connected(TIMEOUT)
    wander = command(SetStatusAction(status=VehicleState.EN_ROUTE).model_dump())
    hub.send(wander)
    hub.wait(lambda: hub.acks(wander.id) == [AckStage.REJECTED], "en_route refused")
    assert {ack.command_id: ack.reason for ack in hub.of(Ack)}[wander.id] == (
        "en_route needs a destination: send a goto"
    )
    assert (vehicle.status, vehicle.speed_kmh) == (VehicleState.STANDBY, 0.0)


def test_a_duplicate_command_is_acked_once(
    hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicles(rate_hz=RARELY).start().wait_connected(TIMEOUT)
    # The same id twice, as a broker redelivers a QoS 1 command whose PUBACK it missed.
    twice = command(SetStatusAction(status=VehicleState.ON_SCENE).model_dump())
    hub.send(twice)
    hub.send(twice)
    # QoS 1 keeps one publisher's order on a topic, so when this is done the duplicate was handled.
    after = command(ReportPositionAction().model_dump())
    hub.send(after)
    hub.wait(lambda: AckStage.DONE in hub.acks(after.id), "the following command acked")
    assert hub.acks(twice.id) == [AckStage.RECEIVED, AckStage.DONE]
    assert [s.state for s in hub.of(VehicleStatus)].count(VehicleState.ON_SCENE) == 1


def test_refuses_expired_undoable_and_malformed_commands(
    hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicles(rate_hz=RARELY).start().wait_connected(TIMEOUT)
    expired = command(ReportPositionAction().model_dump(), issued_ago=120.0, expires_in=60.0)
    video = command(OpenVideoAction().model_dump())
    hub.send(expired)
    hub.send(video)
    hub.send(b'{"id": "not-a-uuid"}')
    video_with_url = command(OpenVideoAction(url="rtsp://video.example/xz-cmd-01").model_dump())
    hub.send(video_with_url)
    hub.wait(lambda: AckStage.DONE in hub.acks(video_with_url.id), "the valid video command acked")

    assert hub.acks(expired.id) == [AckStage.REJECTED]
    assert hub.acks(video.id) == [AckStage.REJECTED]
    reasons = {ack.command_id: ack.reason for ack in hub.of(Ack)}
    assert reasons[expired.id] == "expired"
    assert reasons[video.id] == "no video url configured"
    # The malformed payload got no ack at all: only the three valid commands were answered.
    assert set(reasons) == {expired.id, video.id, video_with_url.id}
    assert hub.of(Telemetry) == []


# Drop-offs -------------------------------------------------------------------------------------


@PROTOCOLS
@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_abrupt_drop_off_fires_the_will_and_return_raises_the_session(
    protocol: str, hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicle = vehicles(rate_hz=5.0, protocol=protocol).start()
    vehicle.wait_connected(TIMEOUT)
    first = vehicle.session
    hub.wait(lambda: any(s.online and s.session == first for _, s in hub.states()), "online")

    vehicle.go_offline(abrupt=True)
    # The will has no time: it was written at connect, not when the link died.
    hub.wait(lambda: ("xz-cmd-01", ConnectionState(online=False, session=first)) in hub.states(), "the will")
    reports = len(hub.of(Telemetry))

    vehicle.come_back()
    vehicle.wait_connected(TIMEOUT)
    assert vehicle.session > first
    hub.wait(lambda: any(s.online and s.session == vehicle.session for _, s in hub.states()), "back online")
    hub.wait(lambda: len(hub.of(Telemetry)) > reports, "reports again")


@PROTOCOLS
def test_a_command_sent_while_away_arrives_on_return(
    protocol: str, hubs: Callable[..., Hub], vehicles: Callable[..., SimulatedVehicle]
) -> None:
    hub = hubs()
    vehicle = vehicles(rate_hz=RARELY, protocol=protocol).start()
    vehicle.wait_connected(TIMEOUT)
    vehicle.go_offline(abrupt=False)
    # A clean leave publishes its own offline state, with a time, instead of the will.
    hub.wait(lambda: any(not s.online and s.at is not None for _, s in hub.states()), "clean offline")

    queued = command(SetStatusAction(status=VehicleState.RETURNING).model_dump())
    hub.send(queued)
    vehicle.come_back()
    hub.wait(lambda: hub.acks(queued.id) == [AckStage.RECEIVED, AckStage.DONE], "queued command acked")
    assert vehicle.status is VehicleState.RETURNING


# Fleets ----------------------------------------------------------------------------------------


def _specs(count: int) -> list[SimVehicleSpec]:
    return [SimVehicleSpec("suqian", f"sq-{n:02d}", None, None, CITIES["suqian"]) for n in range(count)]


def test_a_fleet_reports_drops_off_and_stops(
    mosquitto_broker: ManagedMosquitto, hubs: Callable[..., Hub]
) -> None:
    hub = hubs()
    fleet = Fleet(
        _specs(3),
        mosquitto_broker.url,
        rate_hz=5.0,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.5,
        seed=7,
    )
    with fleet:
        assert fleet.vehicle("sq-01").spec.code == "sq-01"
        with pytest.raises(KeyError):
            fleet.vehicle("sq-01", city="xuzhou")
        hub.wait(
            lambda: {item.device for item in hub.seen(TopicKind.TELEMETRY)} == {"sq-00", "sq-01", "sq-02"},
            "telemetry from every vehicle",
        )
        fleet.chaos(1.0, away_seconds=(0.2, 0.4), interval=0.1)
        hub.wait(lambda: any(not s.online for _, s in hub.states()), "a drop-off")
        states = hub.states()
        gone = next(i for i, (_, s) in enumerate(states) if not s.online)
        device = states[gone][0]
        hub.wait(lambda: any(d == device and s.online for d, s in hub.states()[gone:]), "its return")
    # A clean stop leaves every vehicle's retained state offline.
    late = hubs("late-hub")
    late.wait(lambda: len(late.states()) == 3, "three retained states")
    assert not any(s.online for _, s in late.states())


def test_run_fleet_from_file(
    mosquitto_broker: ManagedMosquitto, hubs: Callable[..., Hub], tmp_path: Path
) -> None:
    hub = hubs()
    credentials = tmp_path / "vehicles.json"
    credentials.write_text(
        json.dumps(
            [
                {"city": "xuzhou", "code": "xz-01", "username": None, "password": None},
                {"city": "suqian", "code": "sq-01", "username": None, "password": None},
            ]
        )
    )
    cities = Path(__file__).parents[2] / "hub" / "data" / "huaihai_cities.json"
    assert len(load_city_centres(cities)) == 10
    fleet = run_fleet_from_file(credentials, cities, mosquitto_broker.url, count=1, rate_hz=5.0)
    try:
        hub.wait(lambda: len(hub.of(Telemetry)) >= 2, "telemetry")
        assert {t.vehicle for t in hub.of(Telemetry)} == {"xz-01"}
        assert [v.spec.code for v in fleet.vehicles] == ["xz-01"]
    finally:
        fleet.stop()


# Control over HTTP -----------------------------------------------------------------------------

TOKEN = "control-token"


def _fleet(broker: ManagedMosquitto) -> Fleet:
    specs = [
        SimVehicleSpec("xuzhou", "xz-01", None, None, CITIES["xuzhou"]),
        SimVehicleSpec("suqian", "sq-01", None, None, CITIES["suqian"]),
    ]
    return Fleet(specs, broker.url, rate_hz=5.0, reconnect_min_delay=0.05, reconnect_max_delay=0.5, seed=3)


@pytest.fixture
def controlled(mosquitto_broker: ManagedMosquitto) -> Iterator[tuple[Fleet, str]]:
    """Return a running fleet of xz-01 and sq-01 with its control server, both stopped at teardown."""
    fleet = _fleet(mosquitto_broker).start()
    try:
        for vehicle in fleet.vehicles:
            vehicle.wait_connected(TIMEOUT)
        yield fleet, fleet.serve_control(TOKEN)
    finally:
        fleet.stop()


def control(url: str, method: str, path: str, *, token: str = TOKEN, **options: Any) -> requests.Response:
    """Send one request to the control server."""
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, url + path, headers=headers, timeout=2 * TIMEOUT, **options)


def retained_state(hubs: Callable[..., Hub], client_id: str, device: str) -> ConnectionState:
    """Return the connection state the broker keeps for a vehicle, as a hub connecting now sees it."""
    late = hubs(client_id)
    late.wait(lambda: any(d == device for d, _ in late.states()), f"{device}'s retained state")
    return next(state for d, state in late.states() if d == device)


@pytest.mark.slow  # kills or restarts a broker, a platform or a process
def test_control_drops_a_vehicle_abruptly_and_brings_it_back(
    controlled: tuple[Fleet, str], hubs: Callable[..., Hub]
) -> None:
    fleet, url = controlled
    hub = hubs()
    listing = control(url, "GET", "/_sim/vehicles")
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == "application/json; charset=utf-8"
    rows = {row["code"]: row for row in listing.json()}
    assert set(rows) == {"xz-01", "sq-01"}
    first = rows["xz-01"]["session"]
    assert rows["xz-01"] | {"lat": 0, "lon": 0} == {
        "code": "xz-01",
        "city": "xuzhou",
        "connected": True,
        "session": first,
        "status": "standby",
        "lat": 0,
        "lon": 0,
    }
    assert 33.9 < rows["xz-01"]["lat"] < 34.3 and 117.1 < rows["xz-01"]["lon"] < 118.3

    dropped = control(url, "POST", "/_sim/vehicles/xz-01/drop", json={"abrupt": True})
    assert dropped.status_code == 200
    assert dropped.json()["connected"] is False
    # The will, written at connect: no time, the session of the connection that died. The broker
    # publishes it once it sees the socket closed, after the answer; the retained copy follows.
    will = ConnectionState(online=False, session=first)
    hub.wait(lambda: ("xz-01", will) in hub.states(), "the will")
    assert retained_state(hubs, "late-hub-1", "xz-01") == will
    assert fleet.vehicle("sq-01").connected

    back = control(url, "POST", "/_sim/vehicles/xz-01/back")
    assert back.status_code == 200
    session = back.json()["session"]
    assert back.json()["connected"] is True and session > first
    hub.wait(
        lambda: any(d == "xz-01" and s.online and s.session == session for d, s in hub.states()), "online"
    )
    state = retained_state(hubs, "late-hub-2", "xz-01")
    assert state.online and state.session == session


def test_control_drops_a_vehicle_cleanly(controlled: tuple[Fleet, str], hubs: Callable[..., Hub]) -> None:
    fleet, url = controlled
    session = fleet.vehicle("sq-01").session
    # No body is a clean drop-off, as is {"abrupt": false}.
    dropped = control(url, "POST", "/_sim/vehicles/sq-01/drop")
    assert dropped.status_code == 200 and dropped.json()["connected"] is False
    # The vehicle answers only once the broker acknowledged its offline state, retained.
    state = retained_state(hubs, "late-hub", "sq-01")
    # A clean leave publishes its own offline state, with a time, instead of the will.
    assert not state.online and state.session == session and state.at is not None
    assert control(url, "POST", "/_sim/vehicles/sq-01/drop", json={"abrupt": False}).status_code == 200
    assert fleet.vehicle("xz-01").connected


def test_control_answers_errors_in_json(controlled: tuple[Fleet, str]) -> None:
    fleet, url = controlled

    def error(response: requests.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code

    error(control(url, "GET", "/_sim/vehicles", token="wrong"), 401, "unauthorized")
    error(control(url, "POST", "/_sim/vehicles/nope/drop"), 404, "unknown_vehicle")
    error(control(url, "POST", "/_sim/vehicles/xz-01/drop?city=suqian"), 404, "unknown_vehicle")
    error(control(url, "GET", "/_sim/elsewhere"), 404, "not_found")
    error(control(url, "POST", "/_sim/vehicles/xz-01/drop", data=b"{not json"), 400, "bad_json")
    error(control(url, "POST", "/_sim/vehicles/xz-01/drop", json={"abrupt": "yes"}), 400, "bad_body")
    error(control(url, "POST", "/_sim/vehicles/xz-01/drop", json=[True]), 400, "bad_body")
    for method, path, allowed in [
        ("GET", "/_sim/vehicles/xz-01/drop", "POST"),
        ("DELETE", "/_sim/vehicles/xz-01/back", "POST"),
        ("POST", "/_sim/vehicles", "GET"),
    ]:
        response = control(url, method, path)
        error(response, 405, "method_not_allowed")
        assert response.headers["Allow"] == allowed
    # None of them dropped a vehicle off.
    assert all(vehicle.connected for vehicle in fleet.vehicles)


def test_the_control_server_stops_with_the_fleet(mosquitto_broker: ManagedMosquitto) -> None:
    fleet = _fleet(mosquitto_broker).start()
    try:
        url = fleet.serve_control(TOKEN)
        assert url.startswith("http://127.0.0.1:")
        assert control(url, "GET", "/_sim/vehicles").status_code == 200
    finally:
        fleet.stop()
    with pytest.raises(requests.ConnectionError):
        control(url, "GET", "/_sim/vehicles")
