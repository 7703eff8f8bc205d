"""Simulated mobile command vehicles (移动指挥车): real MQTT clients that drive, report and obey.

Each `SimulatedVehicle` is one paho-mqtt 2.x client with the fixed client id
`veh-<city>-<code>` and a persistent session, so the broker queues its QoS 1 commands while it is
away. It speaks the topics and payloads of `contracts.mqtt`: a retained `ConnectionState` (online
on every connect, offline as its last will, with a session counter raised before every connect),
a retained `VehicleStatus`, `Telemetry` at `rate_hz`, and an `Ack` for every command.

Driving: a vehicle stands at its home on standby, at speed 0, until a command moves it. A goto
drives to the point at a road speed drawn between 60 and 90 km/h, reporting the status en_route
(with the command's note) on the way and on_scene ("已到达", as a crew would type it) on arrival;
returning drives home and turns to standby there. `speedup` multiplies how far the vehicle
moves per second of wall time so a demo map visibly moves, while `speed_kmh` in its telemetry
stays the road speed; a vehicle that is not moving reports 0. Status and speed therefore always
agree: only en_route and returning move.
`seq` starts at 0 when the vehicle object is made and never goes back, so it rises within each
session and across its reconnects; a restarted simulator starts again at 0 with a higher session.

Commands, in the order a vehicle answers them:

- a payload that fails the Command contract is logged and not acknowledged (it has no usable id);
- a command id already seen is a QoS 1 redelivery and is ignored: no second set of acks;
- an expired command is acked `rejected` with reason "expired";
- a command the vehicle cannot carry out is acked `rejected` with the reason, and never
  `received`: open_video with no url in the command and none configured, set_status en_route
  with nowhere to go (a goto sets the course);
- otherwise `received` at once, then `done` once carried out:
  goto is done on arrival, not before (a goto that another goto or a set_status overtakes on the
  way is acked `rejected`, "superseded"); set_status publishes the retained status at once
  (standby, on_scene and out_of_service stop the vehicle where it is, returning heads home);
  report_position publishes a telemetry report at once; open_video acks `done`.

The ids seen are remembered in memory only (the last 1,024), so a simulator
restarted while a command is being redelivered answers it again; the hub dedupes acks by id.

`Fleet` runs many vehicles: each keeps its own paho network thread (idle, it sleeps in select),
and one shared scheduler thread moves every vehicle and publishes its telemetry, spread evenly
over the period so 200 vehicles do not burst at once. Measured on a 2-core machine (Python 3.11,
paho 2.2, Mosquitto 2.0 on loopback, QoS 1 at 1 Hz, a subscriber in another process, CPU of the
simulator process over 30 s): 50 vehicles 4.8-6.1 % of one core, 200 vehicles 10-12.5 % (about
0.5 ms of CPU a report, idle network threads included), 202 threads, 47 MB resident. Stopping a
fleet disconnects its vehicles one after another: 0.07 s for 200.

`Fleet.serve_control` lets an operator drop chosen vehicles off and bring them back while the
fleet runs, over HTTP on loopback by default, with a bearer token as the partner simulator's
`/_sim/` endpoints have:

- `GET /_sim/vehicles`: a JSON list of {code, city, connected, session, status, lat, lon};
- `POST /_sim/vehicles/<code>/drop`, body optional `{"abrupt": true}`: leave cleanly (an offline
  state) or abruptly (no DISCONNECT, so the broker publishes the will); answers the vehicle;
- `POST /_sim/vehicles/<code>/back`: connect again, waiting up to 5 s; answers the vehicle.

`?city=<slug>` picks the vehicle when codes repeat across cities. Errors are JSON
`{"error": {"code": …, "message": …}}`: 401 without the token, 404 for an unknown path or
vehicle, 400 for a malformed body, 405 for a wrong method. The server answers one request at a
time and stops with the fleet.

`run_fleet_from_file` reads two files:

- credentials: a JSON list of objects, one a vehicle,
  `[{"city": "xuzhou", "code": "xz-cmd-01", "username": "veh-xuzhou-xz-cmd-01", "password": "…"}]`;
  `username` and `password` may be null for an anonymous broker;
- cities: the shape of `hub/data/huaihai_cities.json`, `{"cities": [{"slug": "xuzhou",
  "centre": [117.185, 34.262], …}, …]}`, centres as [longitude, latitude]; other keys are ignored.
"""

from __future__ import annotations

import heapq
import hmac
import itertools
import json
import logging
import math
import random
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from connectors.mqtt_common import PERMANENT_REFUSALS, disable_nagle, next_session
from contracts.errors import ContractError
from contracts.mqtt import (
    DEFAULT_ROOT,
    Ack,
    AckStage,
    Command,
    ConnectionState,
    GotoAction,
    OpenVideoAction,
    ReportPositionAction,
    SetStatusAction,
    Telemetry,
    VehicleState,
    VehicleStatus,
    ack_topic,
    command_topic,
    decode_command,
    encode,
    state_topic,
    status_topic,
    telemetry_topic,
)
from contracts.partner import error_body

logger = logging.getLogger(__name__)

MqttProtocol = Literal["3.1.1", "5"]
LonLat = tuple[float, float]
"""A point as (longitude, latitude), the order of GeoJSON and of the cities file."""

EARTH_RADIUS_KM = 6371.0088
MIN_SPEED_KMH = 60.0
MAX_SPEED_KMH = 90.0
# Enough to cover every redelivery window of QoS 1 while keeping memory flat for a long demo.
_SEEN_IDS = 1024
# CONNACK refusals that retrying with the same credentials cannot cure (MQTT 3.1.1 §3.2.2.3).
# Paho would otherwise queue QoS 1 telemetry without bound while the broker is down; an hour of
# reports at 1 Hz is plenty, and beyond it publish() refuses rather than eats memory.
_MAX_QUEUED = 3600
# How long the broker keeps an MQTT 5 session while the vehicle is away (3.1.1 has no expiry).
_SESSION_EXPIRY = 24 * 3600
_ARRIVED_KM = 0.001
# The control server: how long a client may take over its request before the server moves on,
# how long `back` waits for the broker, the largest body it reads, and how often it looks for stop.
_CONTROL_TIMEOUT = 5.0
_BACK_WAIT = 5.0
_CONTROL_MAX_BODY = 1024
_CONTROL_POLL = 0.05
_CONTROL_PATH = re.compile(r"/_sim/vehicles/(?P<code>[^/]+)/(?P<action>drop|back)")


@dataclass(frozen=True)
class SimVehicleSpec:
    """Who a simulated vehicle is: its city, code, broker credentials and home (lon, lat)."""

    city: str
    code: str
    username: str | None
    password: str | None = field(repr=False)
    home: LonLat

    @property
    def client_id(self) -> str:
        """Return the fixed client id its persistent session is keyed on."""
        return f"veh-{self.city}-{self.code}"


class _StopRaceFilter(logging.Filter):
    """Drop paho's error for a loop pass after a clean DISCONNECT, while telemetry was in flight.

    paho's network thread keeps looping until its QoS 1 messages are acknowledged, so once the
    DISCONNECT has closed the socket it logs one "Client is not connected" error and ends. The
    unacknowledged reports are lost by design of a clean stop; the error says nothing useful.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but that one."""
        return not record.getMessage().startswith("Client is not connected.")


_PAHO_LOGGER = logging.getLogger(f"{__name__}.paho")
_PAHO_LOGGER.addFilter(_StopRaceFilter())


def distance_km(a: LonLat, b: LonLat) -> float:
    """Return the great-circle distance between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _bearing(a: LonLat, b: LonLat) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    # % can return 360.0 for a tiny negative angle through rounding; the contract allows 360.
    return math.degrees(math.atan2(y, x)) % 360.0


def _clamp(point: LonLat) -> LonLat:
    return (min(180.0, max(-180.0, point[0])), min(90.0, max(-90.0, point[1])))


def _parse_url(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"MQTT url must look like mqtt://host:port or mqtts://host:port, not {url!r}")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


class _Scheduler:
    """One thread that calls each registered vehicle's `tick` once a period, spread over it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[tuple[float, int, SimulatedVehicle]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, vehicle: SimulatedVehicle, first_in: float) -> None:
        """Tick `vehicle` first after `first_in` seconds, then every `vehicle.period`."""
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + first_in, next(self._order), vehicle))
            self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def remove(self, vehicle: SimulatedVehicle) -> None:
        """Stop ticking `vehicle`."""
        with self._wake:
            self._heap = [entry for entry in self._heap if entry[2] is not vehicle]
            heapq.heapify(self._heap)

    def stop(self) -> None:
        """End the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopping:
                    return
                due, _, vehicle = heapq.heappop(self._heap)
                # Keep the rhythm without drift, but a scheduler that fell far behind (a paused
                # process) starts afresh instead of firing every missed tick at once.
                following = max(due + vehicle.period, time.monotonic())
                heapq.heappush(self._heap, (following, next(self._order), vehicle))
            try:
                vehicle.tick()
            except Exception:
                # One vehicle's bug must not stop every other vehicle's reports.
                logger.exception("simulated vehicle %s: tick failed", vehicle.spec.client_id)


class SimulatedVehicle:
    """One simulated vehicle: a paho client that drives, reports telemetry and obeys commands."""

    def __init__(
        self,
        spec: SimVehicleSpec,
        url: str,
        *,
        root: str = DEFAULT_ROOT,
        rate_hz: float = 1.0,
        speedup: float = 1.0,
        qos: int = 1,
        protocol: MqttProtocol = "3.1.1",
        video_url: str | None = None,
        keepalive: int = 30,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        seed: int | None = None,
        scheduler: _Scheduler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare the client and the vehicle at home; nothing touches the network until `start`."""
        if rate_hz <= 0 or speedup <= 0:
            raise ValueError("rate_hz and speedup must be positive")
        if qos not in (0, 1):
            raise ValueError(f"telemetry qos must be 0 or 1, not {qos!r}")
        if protocol not in ("3.1.1", "5"):
            raise ValueError(f"protocol must be '3.1.1' or '5', not {protocol!r}")
        self.spec = spec
        self.period = 1.0 / rate_hz
        self.speedup = speedup
        self.qos = qos
        self.protocol: MqttProtocol = protocol
        self.video_url = video_url
        self.stopped_reason: str | None = None
        self._host, self._port, tls = _parse_url(url)
        self._keepalive = keepalive
        self._topics = {
            "telemetry": telemetry_topic(root, spec.city, spec.code),
            "status": status_topic(root, spec.city, spec.code),
            "state": state_topic(root, spec.city, spec.code),
            "cmd": command_topic(root, spec.city, spec.code),
            "ack": ack_topic(root, spec.city, spec.code),
        }
        # A stable seed per vehicle makes a fleet's routes repeat from run to run; routes are no
        # secret, so a non-cryptographic generator is right.
        self._rng = random.Random(zlib.crc32(spec.client_id.encode()) ^ (seed or 0))  # noqa: S311
        # Guards position, route, status and counters: the scheduler thread and paho's network
        # thread (commands) both change them.
        self._lock = threading.RLock()
        self._position: LonLat = _clamp(spec.home)
        self._destination: LonLat | None = None
        # The goto command the vehicle is driving for: acked done on arrival.
        self._goto: UUID | None = None
        self._leg_speed = 0.0
        self._heading = 0.0
        self._state = VehicleState.STANDBY
        self._note = ""
        self._clock = clock
        self._moved_at = clock()
        self._seq = 0
        self._session = 0
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._connected = threading.Event()
        # Set once the broker has granted the cmd subscription: from then on the persistent
        # session holds it, and commands sent while the vehicle is away are queued.
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._away = True
        # Serialises drop-offs and returns: the chaos thread and the control server may both
        # move one vehicle, and a return in the middle of a drop-off would leave it stranded.
        self._presence = threading.Lock()
        self._started = False
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or _Scheduler(f"sim-{spec.client_id}")
        self._client = self._make_client(tls, reconnect_min_delay, reconnect_max_delay)

    def __repr__(self) -> str:
        """Show the client id and whether the vehicle is connected."""
        return f"<SimulatedVehicle {self.spec.client_id} {'online' if self.connected else 'offline'}>"

    # State a caller may read -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Return whether the broker has accepted the current connection."""
        return self._connected.is_set()

    @property
    def session(self) -> int:
        """Return the session counter of the current (or last) connection."""
        return self._session

    @property
    def position(self) -> LonLat:
        """Return where the vehicle is, as (lon, lat)."""
        with self._lock:
            return self._position

    @property
    def status(self) -> VehicleState:
        """Return the vehicle's business status."""
        with self._lock:
            return self._state

    @property
    def speed_kmh(self) -> float:
        """Return the road speed the vehicle reports: 0 unless it is driving somewhere."""
        with self._lock:
            return self._speed()

    @property
    def next_seq(self) -> int:
        """Return the seq of the next telemetry report: how many reports it has made so far."""
        with self._lock:
            return self._seq

    @property
    def topics(self) -> Mapping[str, str]:
        """Return the vehicle's topics by leaf: telemetry, status, state, cmd, ack."""
        return dict(self._topics)

    def wait_connected(self, timeout: float) -> None:
        """Wait until connected and subscribed to commands; raise TimeoutError otherwise."""
        if not self._subscribed.wait(timeout):
            detail = f": {self.stopped_reason}" if self.stopped_reason else ""
            raise TimeoutError(f"{self.spec.client_id} not connected within {timeout} s{detail}")

    # Life cycle --------------------------------------------------------------------------------

    def _make_client(self, tls: bool, min_delay: float, max_delay: float) -> mqtt.Client:
        v5 = self.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.spec.client_id,
            # A persistent session (MQTT 3.1.1 §3.1.2.4): the broker keeps the cmd subscription
            # and queues QoS 1 commands while the vehicle is away. MQTT 5 sets it per connect.
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        if self.spec.username is not None:
            client.username_pw_set(self.spec.username, self.spec.password)
        if tls:
            client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # Sub-second delays keep tests quick.
        client.reconnect_delay_set(min_delay, max_delay)  # type: ignore[arg-type]  # paho hints int, sleeps on any number
        client.max_queued_messages_set(_MAX_QUEUED)
        client.suppress_exceptions = True
        client.enable_logger(_PAHO_LOGGER)
        client.on_pre_connect = self._on_pre_connect
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def start(self) -> Self:
        """Connect in the background and start reporting; paho retries until the broker answers."""
        if self._started:
            raise RuntimeError(f"{self.spec.client_id} was already started")
        self._started = True
        self._connect()
        # A random phase spreads a fleet's reports evenly over the period.
        self._scheduler.add(self, self._rng.uniform(0, self.period))
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Publish the offline state if connected, disconnect cleanly and stop reporting."""
        self._scheduler.remove(self)
        if self._own_scheduler:
            self._scheduler.stop()
        self.go_offline(abrupt=False, timeout=timeout)

    def __enter__(self) -> Self:
        """Start the vehicle."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the vehicle."""
        self.stop()

    def go_offline(self, *, abrupt: bool, timeout: float = 2.0) -> None:
        """Leave the broker: abruptly (no DISCONNECT, so the will fires) or cleanly (offline state)."""
        with self._presence:
            self._leave(abrupt, timeout)

    def _leave(self, abrupt: bool, timeout: float) -> None:
        with self._lock:
            if self._away:
                return
            # Set first so the scheduler publishes nothing more while the connection winds down.
            self._away = True
        if abrupt:
            self._client.loop_stop()
            sock = self._client.socket()
            # Closing the socket without DISCONNECT is what a crash or lost radio link looks like:
            # the broker publishes the will (MQTT 3.1.1 §3.1.2.5).
            if isinstance(sock, socket.socket):
                sock.close()
            self._connected.clear()
            self._subscribed.clear()
            logger.info("simulated vehicle %s dropped off abruptly", self.spec.client_id)
            return
        if self._connected.is_set():
            offline = ConnectionState(online=False, session=self._session, at=datetime.now(UTC))
            info = self._client.publish(self._topics["state"], encode(offline), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as error:
                logger.warning("simulated vehicle %s: offline state not sent: %s", self.spec.client_id, error)
        # A clean DISCONNECT makes the broker discard the will; the offline state above stays.
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._subscribed.clear()
        logger.info("simulated vehicle %s went offline", self.spec.client_id)

    def come_back(self) -> None:
        """Connect again after `go_offline`, resuming the persistent session."""
        with self._presence:
            with self._lock:
                if not self._away:
                    return
            self._connect()

    def _connect(self) -> None:
        with self._lock:
            self._away = False
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = _SESSION_EXPIRY
            # clean_start=False on the first connect too, or commands queued for the vehicle
            # before this process started would be thrown away.
            self._client.connect_async(
                self._host, self._port, self._keepalive, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(self._host, self._port, self._keepalive)
        self._client.loop_start()

    # Driving and reporting (scheduler thread) ---------------------------------------------------

    def tick(self) -> None:
        """Move for the time since the last move and publish a telemetry report."""
        with self._lock:
            self._move()
            if self._away:
                return
            self._publish_telemetry()

    def _set_course(self, destination: LonLat) -> None:
        self._destination = _clamp(destination)
        self._leg_speed = round(self._rng.uniform(MIN_SPEED_KMH, MAX_SPEED_KMH), 1)
        self._heading = round(_bearing(self._position, self._destination), 1)

    def _stop(self) -> None:
        self._destination = None
        self._leg_speed = 0.0

    def _move(self) -> None:
        now = self._clock()
        elapsed, self._moved_at = now - self._moved_at, now
        if self._destination is None:
            return
        step_km = self._leg_speed * self.speedup * elapsed / 3600.0
        remaining = distance_km(self._position, self._destination)
        if step_km + _ARRIVED_KM >= remaining:
            self._position = self._destination
            self._arrive()
            return
        # Interpolating in degrees is close enough to the great circle over a few hundred km.
        fraction = step_km / remaining
        lon, lat = self._position
        self._position = _clamp(
            (lon + (self._destination[0] - lon) * fraction, lat + (self._destination[1] - lat) * fraction)
        )
        self._heading = round(_bearing(self._position, self._destination), 1)

    def _arrive(self) -> None:
        self._stop()
        if self._state is VehicleState.RETURNING:
            self._set_status(VehicleState.STANDBY, "已返回驻地")
            return
        self._set_status(VehicleState.ON_SCENE, "已到达")
        if self._goto is not None:
            goto, self._goto = self._goto, None
            self._ack(goto, AckStage.DONE)
            logger.info("simulated vehicle %s: arrived for goto %s", self.spec.client_id, goto)

    def _supersede(self, by: UUID) -> None:
        """Reject the goto the vehicle was driving for: a newer command changed its course."""
        if self._goto is not None:
            goto, self._goto = self._goto, None
            self._ack(goto, AckStage.REJECTED, f"superseded by command {by}")

    def _speed(self) -> float:
        return self._leg_speed if self._destination is not None else 0.0

    def _publish_telemetry(self) -> None:
        lon, lat = self._position
        report = Telemetry(
            vehicle=self.spec.code,
            lat=round(lat, 6),
            lon=round(lon, 6),
            speed_kmh=self._speed(),
            heading=self._heading,
            at=datetime.now(UTC),
            seq=self._seq,
        )
        info = self._client.publish(self._topics["telemetry"], encode(report), qos=self.qos)
        # paho keeps a QoS 1 report it could not send for want of a connection (NO_CONN) and
        # sends it after the reconnect: it is on its way like any other, and the next report
        # needs the next number, or the hub would store two reports under one seq.
        if info.rc == mqtt.MQTT_ERR_SUCCESS or (info.rc == mqtt.MQTT_ERR_NO_CONN and self.qos == 1):
            self._seq += 1
        elif info.rc != mqtt.MQTT_ERR_NO_CONN:
            # NO_CONN is a QoS 0 report while the broker is away: dropped, as QoS 0 allows.
            logger.warning(
                "simulated vehicle %s: telemetry not published: %s",
                self.spec.client_id,
                mqtt.error_string(info.rc),
            )

    def _set_status(self, state: VehicleState, note: str = "") -> None:
        self._state, self._note = state, note
        self._publish_status()

    def _publish_status(self) -> None:
        status = VehicleStatus(state=self._state, note=self._note, at=datetime.now(UTC))
        self._client.publish(self._topics["status"], encode(status), qos=1, retain=True)

    # Commands (paho's network thread) ------------------------------------------------------------

    def _ack(self, command_id: UUID, stage: AckStage, reason: str | None = None) -> None:
        ack = Ack(command_id=command_id, stage=stage, reason=reason, at=datetime.now(UTC))
        self._client.publish(self._topics["ack"], encode(ack), qos=1)

    def _handle(self, command: Command) -> None:
        with self._lock:
            if command.id in self._seen:
                logger.debug("simulated vehicle %s: duplicate command %s", self.spec.client_id, command.id)
                return
            self._seen[command.id] = None
            if len(self._seen) > _SEEN_IDS:
                self._seen.popitem(last=False)
            if command.expired(datetime.now(UTC)):
                self._ack(command.id, AckStage.REJECTED, "expired")
                return
            action = command.action
            if isinstance(action, OpenVideoAction) and not (action.url or self.video_url):
                self._ack(command.id, AckStage.REJECTED, "no video url configured")
                return
            wandering = isinstance(action, SetStatusAction) and action.status is VehicleState.EN_ROUTE
            if wandering and self._goto is None:
                self._ack(command.id, AckStage.REJECTED, "en_route needs a destination: send a goto")
                return
            self._ack(command.id, AckStage.RECEIVED)
            self._move()
            if isinstance(action, GotoAction):
                self._supersede(command.id)
                self._set_course((action.lon, action.lat))
                self._set_status(VehicleState.EN_ROUTE, action.note)
                # Done on arrival (`_arrive`), not now.
                self._goto = command.id
                logger.info("simulated vehicle %s: driving for goto %s", self.spec.client_id, command.id)
                return
            if isinstance(action, SetStatusAction):
                self._obey_status(action.status, command.id)
            elif isinstance(action, ReportPositionAction):
                self._publish_telemetry()
            elif isinstance(action, OpenVideoAction):
                logger.info(
                    "simulated vehicle %s: video to %s", self.spec.client_id, action.url or self.video_url
                )
            self._ack(command.id, AckStage.DONE)
        logger.info("simulated vehicle %s: carried out %s %s", self.spec.client_id, command.kind, command.id)

    def _obey_status(self, state: VehicleState, command_id: UUID) -> None:
        if state is VehicleState.EN_ROUTE:
            # Already driving for a goto (checked before `received`): nothing changes.
            return
        self._supersede(command_id)
        if state is VehicleState.RETURNING:
            self._set_course(self.spec.home)
        else:
            self._stop()
        self._set_status(state)

    # Paho callbacks (network thread) -----------------------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        # A new session for every connection, in the will now because CONNECT carries the will.
        # Milliseconds since the epoch keep it rising across simulator restarts, so a late will
        # of an earlier run cannot mark a reconnected vehicle offline.
        self._session = next_session(self._session)
        will = ConnectionState(online=False, session=self._session)
        client.will_set(self._topics["state"], encode(will), qos=1, retain=True)

    def _on_socket_open(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        disable_nagle(sock, f"simulated vehicle {self.spec.client_id}", logger)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            reason = reason_code.getName()
            if reason in PERMANENT_REFUSALS:
                self.stopped_reason = f"broker refused {self.spec.client_id}: {reason}; not retrying"
                logger.error("simulated vehicle %s", self.stopped_reason)
                client.disconnect()
            else:
                logger.warning("simulated vehicle %s: broker refused: %s", self.spec.client_id, reason)
            return
        logger.debug(
            "simulated vehicle %s connected (session present: %s, session %d)",
            self.spec.client_id,
            flags.session_present,
            self._session,
        )
        # Paho never subscribes again by itself, and a broker that lost its state comes back
        # without the session: subscribe on every connect.
        _, self._subscribe_mid = client.subscribe(self._topics["cmd"], qos=1)
        birth = ConnectionState(online=True, session=self._session, at=datetime.now(UTC))
        client.publish(self._topics["state"], encode(birth), qos=1, retain=True)
        with self._lock:
            self._publish_status()
        self._connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        if was_connected and not self._away:
            logger.info(
                "simulated vehicle %s lost the broker: %s", self.spec.client_id, reason_code.getName()
            )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        if mid != self._subscribe_mid:
            return
        if any(code.is_failure for code in reason_codes):
            # An ACL that denies the filter answers 0x80 in the SUBACK (MQTT 3.1.1 §3.9.3).
            logger.error("simulated vehicle %s: broker refused its cmd subscription", self.spec.client_id)
            return
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            command = decode_command(bytes(message.payload))
        except ContractError as error:
            # Without a valid id there is nothing to acknowledge; the hub times the command out.
            logger.warning(
                "simulated vehicle %s: bad command on %s: %s", self.spec.client_id, message.topic, error
            )
            return
        self._handle(command)


class Fleet:
    """Many simulated vehicles on one broker, driven by one scheduler thread."""

    def __init__(
        self,
        specs: Iterable[SimVehicleSpec],
        url: str,
        *,
        root: str = DEFAULT_ROOT,
        rate_hz: float = 1.0,
        speedup: float = 30.0,
        qos: int = 1,
        protocol: MqttProtocol = "3.1.1",
        video_url: str | None = None,
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        seed: int | None = None,
    ) -> None:
        """Prepare the vehicles; nothing touches the network until `start`."""
        self._scheduler = _Scheduler("sim-fleet")
        self.vehicles: tuple[SimulatedVehicle, ...] = tuple(
            SimulatedVehicle(
                spec,
                url,
                root=root,
                rate_hz=rate_hz,
                speedup=speedup,
                qos=qos,
                protocol=protocol,
                video_url=video_url,
                reconnect_min_delay=reconnect_min_delay,
                reconnect_max_delay=reconnect_max_delay,
                seed=seed,
                scheduler=self._scheduler,
            )
            for spec in specs
        )
        ids = [vehicle.spec.client_id for vehicle in self.vehicles]
        if len(set(ids)) != len(ids):
            raise ValueError("two vehicles share a city and code, hence a client id")
        self._rng = random.Random(seed)  # noqa: S311
        self._chaos_stop = threading.Event()
        self._chaos_thread: threading.Thread | None = None
        self._control: tuple[_ControlServer, threading.Thread] | None = None

    def start(self) -> Self:
        """Start every vehicle."""
        for vehicle in self.vehicles:
            vehicle.start()
        logger.info("simulated fleet of %d vehicles started", len(self.vehicles))
        return self

    def stop(self) -> None:
        """Stop the control server and the chaos, then every vehicle, cleanly."""
        if self._control is not None:
            server, thread = self._control
            self._control = None
            # Waits for the request in hand, so no vehicle comes back after it was stopped.
            server.shutdown()
            server.server_close()
            thread.join()
        self._chaos_stop.set()
        if self._chaos_thread is not None:
            self._chaos_thread.join()
        self._scheduler.stop()
        for vehicle in self.vehicles:
            vehicle.stop()
        logger.info("simulated fleet stopped")

    def __enter__(self) -> Self:
        """Start the fleet."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the fleet."""
        self.stop()

    def vehicle(self, code: str, city: str | None = None) -> SimulatedVehicle:
        """Return the vehicle with this code (and city, when codes repeat across cities)."""
        found = [v for v in self.vehicles if v.spec.code == code and city in (None, v.spec.city)]
        if not found:
            raise KeyError(f"no vehicle with code {code!r}" + (f" in {city!r}" if city else ""))
        if len(found) > 1:
            raise KeyError(f"{len(found)} vehicles with code {code!r}; name the city too")
        return found[0]

    def serve_control(self, token: str, *, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the `/_sim/vehicles` control endpoints until the fleet stops; return their URL.

        Port 0 takes a free port. Raises OSError when the address cannot be bound.
        """
        if not token:
            raise ValueError("the control server needs a bearer token")
        if self._control is not None:
            raise RuntimeError("the control server is already running")
        server = _ControlServer((host, port), self, token)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _CONTROL_POLL},
            name="sim-fleet-control",
            daemon=True,
        )
        thread.start()
        self._control = (server, thread)
        url = f"http://{server.server_name}:{server.server_port}"
        logger.info("simulated fleet: controls on %s", url)
        return url

    def chaos(
        self,
        dropout_probability: float,
        *,
        away_seconds: tuple[float, float] = (10.0, 60.0),
        abrupt_share: float = 0.5,
        interval: float = 1.0,
    ) -> None:
        """Every `interval`, with this probability, drop a random online vehicle off for a while.

        A share `abrupt_share` of drop-offs close the socket (the broker publishes the will), the
        rest leave cleanly; each comes back after a time drawn from `away_seconds`.
        """
        if not 0.0 <= dropout_probability <= 1.0 or not 0.0 <= abrupt_share <= 1.0:
            raise ValueError("dropout_probability and abrupt_share must be between 0 and 1")
        if self._chaos_thread is not None:
            raise RuntimeError("chaos is already running")
        self._chaos_thread = threading.Thread(
            target=self._run_chaos,
            args=(dropout_probability, away_seconds, abrupt_share, interval),
            name="sim-fleet-chaos",
            daemon=True,
        )
        self._chaos_thread.start()

    def _run_chaos(
        self, probability: float, away: tuple[float, float], abrupt_share: float, interval: float
    ) -> None:
        returning: list[tuple[float, int, SimulatedVehicle]] = []
        order = itertools.count()
        while not self._chaos_stop.wait(interval):
            now = time.monotonic()
            while returning and returning[0][0] <= now:
                vehicle = heapq.heappop(returning)[2]
                logger.info("chaos: %s comes back", vehicle.spec.client_id)
                vehicle.come_back()
            present = [v for v in self.vehicles if v.connected]
            if present and self._rng.random() < probability:
                vehicle = self._rng.choice(present)
                abrupt = self._rng.random() < abrupt_share
                logger.info(
                    "chaos: %s drops off (%s)", vehicle.spec.client_id, "abrupt" if abrupt else "clean"
                )
                vehicle.go_offline(abrupt=abrupt)
                heapq.heappush(returning, (now + self._rng.uniform(*away), next(order), vehicle))


# Control over HTTP ------------------------------------------------------------------------------


class _ControlError(Exception):
    """An error answer: its HTTP status, error code, message and, for a 405, the allowed method."""

    def __init__(self, status: HTTPStatus, code: str, message: str, allow: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.allow = allow


class _ControlHandler(BaseHTTPRequestHandler):
    server: _ControlServer
    # One request a connection: a kept-alive client would hold the one-request-at-a-time server.
    protocol_version = "HTTP/1.0"
    # A client that connects and sends nothing must not hold the one-request-at-a-time server.
    timeout = _CONTROL_TIMEOUT

    def _dispatch(self) -> None:
        self.server.answer(self)

    # Every method reaches the router, so a wrong one is a JSON 405 rather than the stdlib's 501.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("control %s %s", self.address_string(), format % args)


class _ControlServer(HTTPServer):
    """The control endpoints of one fleet, answering one request at a time.

    Not threaded on purpose: a drop and a back sent together are carried out one after the
    other, and `shutdown` returns only once the request in hand is answered.
    """

    def __init__(self, address: tuple[str, int], fleet: Fleet, token: str) -> None:
        self.fleet = fleet
        self._token = token.encode("utf-8")
        super().__init__(address, _ControlHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up (getfqdn); a slow resolver would hold
        # up the start for nothing.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request; a client that timed out or hung up is not the server's fault."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug("control connection from %s ended: %s", client_address, error)
            return
        logger.exception("simulated fleet controls failed on a request from %s", client_address)

    def answer(self, handler: _ControlHandler) -> None:
        """Check the token, carry out the request and send the JSON answer."""
        allow = None
        try:
            if not self._authorised(handler):
                raise _ControlError(HTTPStatus.UNAUTHORIZED, "unauthorized", "a valid bearer token is needed")
            status, body = HTTPStatus.OK, json.dumps(self._route(handler), ensure_ascii=False).encode()
        except _ControlError as error:
            status, body, allow = error.status, error_body(error.code, error.message), error.allow
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        if status is HTTPStatus.UNAUTHORIZED:
            handler.send_header("WWW-Authenticate", 'Bearer realm="sim-vehicles"')
        if allow is not None:
            handler.send_header("Allow", allow)
        handler.end_headers()
        handler.wfile.write(body)

    def _authorised(self, handler: _ControlHandler) -> bool:
        scheme, _, token = (handler.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode("utf-8"), self._token)

    def _route(self, handler: _ControlHandler) -> Any:
        target = urlsplit(handler.path)
        path = target.path.rstrip("/")
        if path == "/_sim/vehicles":
            _require(handler, "GET")
            return [_describe(vehicle) for vehicle in self.fleet.vehicles]
        match = _CONTROL_PATH.fullmatch(path)
        if match is None:
            raise _ControlError(
                HTTPStatus.NOT_FOUND,
                "not_found",
                "use GET /_sim/vehicles or POST /_sim/vehicles/<code>/drop or /back",
            )
        _require(handler, "POST")
        city = parse_qs(target.query).get("city", [None])[-1]
        try:
            vehicle = self.fleet.vehicle(unquote(match["code"]), city)
        except KeyError as error:
            raise _ControlError(HTTPStatus.NOT_FOUND, "unknown_vehicle", str(error.args[0])) from error
        if match["action"] == "drop":
            vehicle.go_offline(abrupt=_abrupt(handler))
        else:
            vehicle.come_back()
            try:
                vehicle.wait_connected(_BACK_WAIT)
            except TimeoutError as error:
                # paho keeps trying in the background; the answer shows the vehicle not connected.
                logger.warning("simulated fleet controls: %s", error)
        return _describe(vehicle)


def _require(handler: _ControlHandler, method: str) -> None:
    if handler.command != method:
        raise _ControlError(
            HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"use {method}", allow=method
        )


def _abrupt(handler: _ControlHandler) -> bool:
    """Read the optional body of a drop, `{"abrupt": true|false}`; an empty one means clean."""
    length = handler.headers.get("Content-Length") or "0"
    if not length.isdigit():
        raise _ControlError(HTTPStatus.BAD_REQUEST, "bad_length", "Content-Length must be a number")
    if int(length) > _CONTROL_MAX_BODY:
        limit = f"bodies are limited to {_CONTROL_MAX_BODY} bytes"
        raise _ControlError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", limit)
    raw = handler.rfile.read(int(length))
    if not raw.strip():
        return False
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise _ControlError(HTTPStatus.BAD_REQUEST, "bad_json", f"the body is not JSON: {error}") from error
    abrupt = body.get("abrupt", False) if isinstance(body, dict) and set(body) <= {"abrupt"} else None
    if not isinstance(abrupt, bool):
        raise _ControlError(HTTPStatus.BAD_REQUEST, "bad_body", 'the body must be {"abrupt": true|false}')
    return abrupt


def _describe(vehicle: SimulatedVehicle) -> dict[str, Any]:
    lon, lat = vehicle.position
    return {
        "code": vehicle.spec.code,
        "city": vehicle.spec.city,
        "connected": vehicle.connected,
        "session": vehicle.session,
        "status": vehicle.status.value,
        "lat": round(lat, 6),
        "lon": round(lon, 6),
    }


def load_city_centres(path: Path | str) -> dict[str, LonLat]:
    """Read city centres as {slug: (lon, lat)} from a file shaped like huaihai_cities.json."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    try:
        return {city["slug"]: (float(city["centre"][0]), float(city["centre"][1])) for city in data["cities"]}
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: expected {{'cities': [{{'slug': …, 'centre': [lon, lat]}}]}}") from error


def load_vehicle_specs(path: Path | str, cities: Mapping[str, LonLat]) -> list[SimVehicleSpec]:
    """Read vehicle credentials; each vehicle's home is its city's centre, offset by up to ~3 km."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of {{city, code, username, password}}")
    specs = []
    for entry in entries:
        try:
            city, code = str(entry["city"]), str(entry["code"])
            username, password = entry.get("username"), entry.get("password")
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: bad vehicle entry {entry!r}") from error
        if city not in cities:
            raise ValueError(f"{path}: vehicle {code!r} belongs to unknown city {city!r}")
        # Vehicles of one city would all stand on one pixel of the map without the offset.
        rng = random.Random(zlib.crc32(f"{city}/{code}".encode()))  # noqa: S311
        lon, lat = cities[city]
        home = (lon + rng.uniform(-0.03, 0.03), lat + rng.uniform(-0.03, 0.03))
        specs.append(SimVehicleSpec(city, code, username, password, home))
    return specs


def run_fleet_from_file(
    credentials_json_path: Path | str,
    cities_json_path: Path | str,
    url: str,
    *,
    count: int | None = None,
    chaos: float = 0.0,
    **fleet_options: Any,
) -> Fleet:
    """Start a fleet of the first `count` vehicles of the credentials file and return it running.

    `fleet_options` go to `Fleet` (root, rate_hz, speedup, qos, protocol, video_url, seed);
    `chaos` is the drop-off probability per second (0 turns it off). The caller stops the fleet.
    """
    cities = load_city_centres(cities_json_path)
    specs = load_vehicle_specs(credentials_json_path, cities)
    if count is not None:
        specs = specs[:count]
    fleet = Fleet(specs, url, **fleet_options).start()
    if chaos > 0:
        fleet.chaos(chaos)
    return fleet
