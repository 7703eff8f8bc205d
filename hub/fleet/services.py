"""The registry of MQTT peers: mobile command vehicles and linkage systems."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select

from contracts.mqtt import (
    JointAlert,
    ack_topic,
    command_topic,
    encode,
    linkage_alerts_topic,
    linkage_events_topic,
    linkage_state_topic,
    state_topic,
    status_topic,
    telemetry_topic,
)
from hub.capabilities import BrokerAccount
from hub.fleet.models import LinkageSystem, Vehicle, VehiclePosition
from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.broker_auth import mosquitto_hash, new_secret
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, MqttOutbox
from hub.kernel.types import DbSession

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LINKAGE_KINDS = ("110", "119", "120", "122")


def _require_registrar(actor: Actor, city: City) -> None:
    # A city's coordinators look after their own peers; the hub admin looks after all.
    if actor.kind == "system" or actor.is_admin:
        return
    if actor.can_write_incidents and actor.city_id == city.id:
        return
    raise Forbidden("you may register vehicles and systems for your own city only")


def _check_code(code: str) -> str:
    if not _CODE.match(code):
        raise InvalidInput(f"code {code!r} must be lower-case letters, digits, '-' or '_' (at most 64)")
    return code


def register_vehicle(
    session: DbSession, actor: Actor, city: City, code: str, name: str
) -> tuple[Vehicle, str]:
    """Register a vehicle; return it and its MQTT password (shown once, stored hashed)."""
    _require_registrar(actor, city)
    code = _check_code(code)
    if session.scalar(select(Vehicle).where(Vehicle.city_id == city.id, Vehicle.code == code)):
        raise Conflict(f"{city.slug} already has a vehicle {code!r}")
    password = new_secret()
    vehicle = Vehicle(
        city=city,
        code=code,
        name=name.strip() or code,
        mqtt_username=f"veh-{city.slug}-{code}",
        mqtt_password_hash=mosquitto_hash(password),
        online=False,
        session=0,
    )
    session.add(vehicle)
    session.flush()
    audit.record(
        session,
        actor,
        "vehicle.registered",
        "vehicle",
        vehicle.id,
        after={"city": city.slug, "code": code, "name": vehicle.name},
        city_id=city.id,
    )
    return vehicle, password


def register_linkage_system(
    session: DbSession, actor: Actor, city: City, code: str, kind: str, name: str
) -> tuple[LinkageSystem, str]:
    """Register a 110/119/120/122 dispatch system; return it and its MQTT password."""
    _require_registrar(actor, city)
    code = _check_code(code)
    if kind not in LINKAGE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(LINKAGE_KINDS)}")
    if session.scalar(
        select(LinkageSystem).where(LinkageSystem.city_id == city.id, LinkageSystem.code == code)
    ):
        raise Conflict(f"{city.slug} already has a linkage system {code!r}")
    password = new_secret()
    system = LinkageSystem(
        city=city,
        code=code,
        kind=kind,
        name=name.strip() or f"{kind}",
        mqtt_username=f"lnk-{city.slug}-{code}",
        mqtt_password_hash=mosquitto_hash(password),
        online=False,
        session=0,
    )
    session.add(system)
    session.flush()
    audit.record(
        session,
        actor,
        "linkage_system.registered",
        "linkage_system",
        system.id,
        after={"city": city.slug, "code": code, "kind": kind},
        city_id=city.id,
    )
    return system, password


def vehicles(session: DbSession, city_id: int | None = None) -> list[Vehicle]:
    """Return the vehicles of one city, or of the region, in a stable order."""
    query = select(Vehicle).order_by(Vehicle.city_id, Vehicle.code)
    if city_id is not None:
        query = query.where(Vehicle.city_id == city_id)
    return list(session.scalars(query))


def vehicle(session: DbSession, vehicle_id: int) -> Vehicle:
    """Return one vehicle or fail."""
    found = session.get(Vehicle, vehicle_id)
    if found is None:
        raise NotFound(f"no vehicle {vehicle_id}")
    return found


MAX_TRACK_POINTS = 5000


def track(
    session: DbSession,
    vehicle_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[VehiclePosition]:
    """Return a vehicle's positions in [since, until), the latest `limit` of them, oldest first."""
    vehicle(session, vehicle_id)
    if not 1 <= limit <= MAX_TRACK_POINTS:
        raise InvalidInput(f"limit must be between 1 and {MAX_TRACK_POINTS}")
    if since is not None and until is not None and since >= until:
        raise InvalidInput("since must come before until")
    # (vehicle_id, at, seq) is the unique index: the range and the order are read from it.
    query = select(VehiclePosition).where(VehiclePosition.vehicle_id == vehicle_id)
    if since is not None:
        query = query.where(VehiclePosition.at >= since)
    if until is not None:
        query = query.where(VehiclePosition.at < until)
    newest = session.scalars(
        query.order_by(VehiclePosition.at.desc(), VehiclePosition.seq.desc()).limit(limit)
    )
    return list(reversed(list(newest)))


def vehicle_by_code(session: DbSession, city_slug: str, code: str) -> Vehicle | None:
    """Return the vehicle known by its topic address, or None."""
    return session.scalar(
        select(Vehicle)
        .join(City, Vehicle.city_id == City.id)
        .where(City.slug == city_slug, Vehicle.code == code)
    )


def linkage_system_by_code(session: DbSession, city_slug: str, code: str) -> LinkageSystem | None:
    """Return the linkage system known by its topic address, or None."""
    return session.scalar(
        select(LinkageSystem).join(City).where(City.slug == city_slug, LinkageSystem.code == code)
    )


def reset_password(peer: Vehicle | LinkageSystem) -> str:
    """Give a peer a new MQTT password; return it (the only copy) and store its hash."""
    password = new_secret()
    peer.mqtt_password_hash = mosquitto_hash(password)
    return password


def broker_accounts(session: DbSession, root: str) -> list[BrokerAccount]:
    """Each vehicle and linkage system, with its own topics under the live and exercise roots."""
    drill = (False, True)
    accounts = []
    for vehicle in session.scalars(select(Vehicle).order_by(Vehicle.id)):
        city, code = vehicle.city.slug, vehicle.code
        makers = (telemetry_topic, status_topic, state_topic, ack_topic)
        write = tuple(make(root, city, code, exercise=x) for x in drill for make in makers)
        read = tuple(command_topic(root, city, code, exercise=x) for x in drill)
        accounts.append(BrokerAccount(vehicle.mqtt_username, vehicle.mqtt_password_hash, write, read))
    for system in session.scalars(select(LinkageSystem).order_by(LinkageSystem.id)):
        city, code = system.city.slug, system.code
        linkage_makers = (linkage_events_topic, linkage_state_topic)
        write = tuple(make(root, city, code, exercise=x) for x in drill for make in linkage_makers)
        read = tuple(linkage_alerts_topic(root, city, code, exercise=x) for x in drill)
        accounts.append(BrokerAccount(system.mqtt_username, system.mqtt_password_hash, write, read))
    return accounts


def vehicle_ids_in(session: DbSession, city_ids: list[int]) -> list[int]:
    """Return the ids of the vehicles of these cities."""
    return list(session.scalars(select(Vehicle.id).where(Vehicle.city_id.in_(city_ids)).order_by(Vehicle.id)))


def linkage_systems_in(session: DbSession, city_ids: list[int]) -> list[LinkageSystem]:
    """Return the linkage systems of these cities."""
    query = select(LinkageSystem).where(LinkageSystem.city_id.in_(city_ids)).order_by(LinkageSystem.id)
    return list(session.scalars(query))


def queue_joint_alert(session: DbSession, system: LinkageSystem, alert: JointAlert, *, root: str) -> None:
    """Queue a joint alert to one linkage system, in the caller's transaction (the outbox sends it)."""
    topic = linkage_alerts_topic(root, system.city.slug, system.code, exercise=alert.exercise)
    session.add(MqttOutbox(topic=topic, payload=encode(alert), qos=1, attempts=0))
