"""Write what vehicles and linkage systems report, a batch per transaction, each message once."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Connection, delete, func, select, text

from contracts.common import IncidentStatus
from contracts.incidents import IncidentCreate
from contracts.mqtt import (
    Ack,
    BridgeLinkState,
    ConnectionState,
    LinkageEvent,
    LinkageEventStatus,
    Payload,
    Telemetry,
    TopicAddress,
    TopicKind,
    VehicleStatus,
    supersedes,
)
from hub.fleet import areas, borders, commands
from hub.fleet.models import LinkageEventLink, LinkageSystem, Vehicle, VehiclePosition
from hub.incidents import services as incidents
from hub.kernel import bridges, dead_letters
from hub.kernel.actors import Actor
from hub.kernel.errors import ServiceError
from hub.kernel.models import City, Role
from hub.kernel.types import DbSession, affected_rows, table_of, utcnow

_Device = TypeVar("_Device", Vehicle, LinkageSystem)

log = logging.getLogger(__name__)

# How far ahead of the hub's clock a report's own time may be. A vehicle whose clock runs ahead
# further than this sends reports that would hold its live state until that time comes.
DEFAULT_MAX_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Inbound:
    """A decoded message with the raw bytes kept for a dead letter."""

    address: TopicAddress
    payload: Payload
    raw: bytes


class _Peers:
    """The peers a batch names, loaded with one query each.

    Loading only these (not the whole registry) keeps a one-message batch cheap: at 1,000
    vehicles the whole registry cost 18 ms a batch, these few rows well under 1 ms. Telemetry
    needs only the vehicle's id, so those vehicles are read as plain rows, not ORM objects.
    """

    def __init__(self, session: DbSession, batch: list[Inbound]) -> None:
        def keys(kinds: tuple[TopicKind, ...]) -> set[tuple[str | None, str]]:
            return {(i.address.city, i.address.device) for i in batch if i.address.kind in kinds}

        self.vehicle_ids = self._ids(session, keys((TopicKind.TELEMETRY,)))
        self.vehicles = self._load(session, Vehicle, keys(_VEHICLE_KINDS))
        self.systems = self._load(session, LinkageSystem, keys(_LINKAGE_KINDS))

    @staticmethod
    def _ids(session: DbSession, keys: set[tuple[str | None, str]]) -> dict[tuple[str, str], int]:
        if not keys:
            return {}
        rows = session.execute(
            select(City.slug, Vehicle.code, Vehicle.id)
            .join(City, Vehicle.city_id == City.id)
            .where(City.slug.in_({city for city, _ in keys}), Vehicle.code.in_({code for _, code in keys}))
        )
        return {(slug, code): vehicle_id for slug, code, vehicle_id in rows if (slug, code) in keys}

    @staticmethod
    def _load(
        session: DbSession, model: type[_Device], keys: set[tuple[str | None, str]]
    ) -> dict[tuple[str, str], _Device]:
        if not keys:
            return {}
        rows = session.scalars(
            select(model)
            .join(City, model.city_id == City.id)
            .where(City.slug.in_({city for city, _ in keys}), model.code.in_({code for _, code in keys}))
        )
        return {(row.city.slug, row.code): row for row in rows if (row.city.slug, row.code) in keys}


# Telemetry is not among them: it is written through Core, see `_Peers` and `_Telemetry`.
_VEHICLE_KINDS = (TopicKind.STATUS, TopicKind.STATE, TopicKind.ACK)
_LINKAGE_KINDS = (TopicKind.LINKAGE_EVENTS, TopicKind.LINKAGE_STATE)


# Position reports skip the ORM and SQLAlchemy's per-row parameter handling: at thousands of
# reports a second those cost more than the database's own work. The latest position moves only
# forward in time, checked by the database itself, so that several writers (ingest workers) in
# any order cannot move it back; a redelivered report hits the unique key and is skipped.
_SQLITE_INSERT_POSITIONS = (
    "INSERT INTO vehicle_positions"
    " (vehicle_id, at, seq, latitude, longitude, speed_kmh, heading, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vehicle_id, at, seq) DO NOTHING"
)
_SQLITE_MOVE_LATEST = (
    "UPDATE vehicles SET latitude = ?, longitude = ?, speed_kmh = ?, heading = ?, position_at = ?"
    " WHERE id = ? AND (position_at IS NULL OR position_at <= ? OR position_at > ?)"
)
# PostgreSQL: each statement takes the whole batch as arrays. psycopg2 would send an INSERT … ON
# CONFLICT or an UPDATE given many rows one row at a time, a round trip each (0.35 ms a report).
_PG_INSERT_POSITIONS = text(
    "INSERT INTO vehicle_positions"
    " (vehicle_id, at, seq, latitude, longitude, speed_kmh, heading, received_at)"
    " SELECT t.v, t.a, t.s, t.la, t.lo, t.sp, t.h, :received_at FROM unnest("
    "CAST(:v AS integer[]), CAST(:a AS timestamptz[]), CAST(:s AS bigint[]), CAST(:la AS float8[]),"
    " CAST(:lo AS float8[]), CAST(:sp AS float8[]), CAST(:h AS float8[])) AS t(v, a, s, la, lo, sp, h)"
    " ON CONFLICT (vehicle_id, at, seq) DO NOTHING"
)
# Workers moving the same vehicles at once must lock their rows in one order, or each can end up
# waiting for the other (PostgreSQL then aborts one as a deadlock). NO KEY UPDATE is the lock the
# UPDATE takes anyway; FOR UPDATE would also clash with the KEY SHARE locks that the history
# rows' foreign-key checks hold on the same vehicles, and deadlock again.
_PG_LOCK_VEHICLES = text(
    "SELECT id FROM vehicles WHERE id = ANY(CAST(:v AS integer[])) ORDER BY id FOR NO KEY UPDATE"
)
_PG_MOVE_LATEST = text(
    "UPDATE vehicles SET latitude = t.la, longitude = t.lo, speed_kmh = t.sp, heading = t.h,"
    " position_at = t.a FROM unnest("
    "CAST(:v AS integer[]), CAST(:a AS timestamptz[]), CAST(:la AS float8[]), CAST(:lo AS float8[]),"
    " CAST(:sp AS float8[]), CAST(:h AS float8[])) AS t(v, a, la, lo, sp, h)"
    " WHERE vehicles.id = t.v"
    " AND (vehicles.position_at IS NULL OR vehicles.position_at <= t.a OR vehicles.position_at > :limit)"
)


class _Telemetry:
    """The position reports of one batch: the history rows and each vehicle's newest report."""

    def __init__(self, received_at: datetime, limit: datetime) -> None:
        self.received_at = received_at
        # A latest position dated after this came from a clock far ahead (stored before such
        # reports were refused): any real report replaces it.
        self.limit = limit
        self.reports: list[tuple[int, Telemetry]] = []
        self.newest: dict[int, Telemetry] = {}

    def add(self, vehicle_id: int, report: Telemetry) -> None:
        self.reports.append((vehicle_id, report))
        current = self.newest.get(vehicle_id)
        if current is None or report.at >= current.at:
            self.newest[vehicle_id] = report

    def write(self, session: DbSession) -> None:
        """Insert the history (a redelivered report is ignored) and move each latest position once."""
        if not self.reports:
            return
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            self._write_postgresql(connection)
        else:
            self._write_sqlite(connection)
        # From the latest positions as stored: a report older than the stored one moved nothing.
        borders.settle(session, sorted(self.newest))
        areas.settle(session, sorted(self.newest))

    def _write_sqlite(self, connection: Connection) -> None:
        # The column type's own conversion as the dialect applies it (the UTC step and then SQLite's
        # text format), so the stored text is what the ORM writes and compares against: without the
        # dialect's step the driver wrote "…:13+00:00", which sorts before the ORM's "…:13.000000".
        column_type = table_of(VehiclePosition).c.at.type
        stamp = column_type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
        if stamp is None:
            raise TypeError("the position time column converts nothing on this dialect")
        received = stamp(self.received_at)
        connection.exec_driver_sql(
            _SQLITE_INSERT_POSITIONS,
            [
                (vehicle_id, stamp(r.at), r.seq, r.lat, r.lon, r.speed_kmh, r.heading, received)
                for vehicle_id, r in self.reports
            ],
        )
        latest = [(vehicle_id, r, stamp(r.at)) for vehicle_id, r in self.newest.items()]
        limit = stamp(self.limit)
        connection.exec_driver_sql(
            _SQLITE_MOVE_LATEST,
            [
                (r.lat, r.lon, r.speed_kmh, r.heading, at, vehicle_id, at, limit)
                for vehicle_id, r, at in latest
            ],
        )

    def _write_postgresql(self, connection: Connection) -> None:
        def arrays(reports: Iterable[tuple[int, Telemetry]]) -> dict[str, list[object]]:
            pairs = list(reports)
            return {
                "v": [vehicle_id for vehicle_id, _ in pairs],
                "a": [r.at for _, r in pairs],
                "s": [r.seq for _, r in pairs],
                "la": [r.lat for _, r in pairs],
                "lo": [r.lon for _, r in pairs],
                "sp": [r.speed_kmh for _, r in pairs],
                "h": [r.heading for _, r in pairs],
            }

        connection.execute(_PG_INSERT_POSITIONS, {**arrays(self.reports), "received_at": self.received_at})
        latest = arrays(sorted(self.newest.items()))
        del latest["s"]
        connection.execute(_PG_LOCK_VEHICLES, {"v": latest["v"]})
        connection.execute(_PG_MOVE_LATEST, {**latest, "limit": self.limit})


def apply_batch(
    session: DbSession, batch: list[Inbound], *, root: str, max_skew: timedelta = DEFAULT_MAX_SKEW
) -> Counter[str]:
    """Apply a batch of decoded messages; return counts of what happened to them.

    Telemetry and status reports dated more than `max_skew` ahead of the hub's clock are dead
    letters: stored as the live state they would stop every later real report from replacing it.
    """
    counts: Counter[str] = Counter()
    peers = _Peers(session, batch)
    now = utcnow()
    limit = now + max_skew
    telemetry = _Telemetry(now, limit)
    for item in batch:
        address, payload = item.address, item.payload
        if address.exercise and address.kind not in (TopicKind.LINKAGE_EVENTS, TopicKind.ACK):
            # Drill traffic from vehicles belongs to the drill, never to the live map; only the
            # acks of a drill's own commands are applied (they measure the drill's responses).
            counts["exercise_ignored"] += 1
            continue
        key = (address.city or "", address.device)
        if address.kind is TopicKind.TELEMETRY:
            vehicle_id = peers.vehicle_ids.get(key)
            if vehicle_id is None:
                outcome = "dead:unknown vehicle"
            elif not isinstance(payload, Telemetry) or payload.vehicle != address.device:
                outcome = "dead:telemetry names another vehicle than its topic"
            elif payload.at > limit:
                outcome = _from_the_future(payload.at, now, max_skew)
            else:
                telemetry.add(vehicle_id, payload)
                outcome = "telemetry"
        elif address.kind in _VEHICLE_KINDS:
            vehicle = peers.vehicles.get(key)
            if vehicle is None:
                outcome = "dead:unknown vehicle"
            else:
                outcome = _apply_vehicle(
                    session, vehicle, payload, root, now, max_skew, exercise=address.exercise
                )
        elif address.kind in _LINKAGE_KINDS:
            system = peers.systems.get(key)
            if system is None:
                outcome = "dead:unknown linkage system"
            else:
                outcome = _apply_linkage(session, system, payload, address.exercise)
        elif address.kind is TopicKind.BRIDGE_STATE and isinstance(payload, BridgeLinkState):
            outcome = bridges.record(session, address.city or "", payload.connected, now)
        else:
            outcome = "not_for_hub"
        if outcome.startswith("dead:"):
            dead_letters.record(session, "mqtt", address.topic, outcome.removeprefix("dead:"), item.raw)
            counts["dead_letter"] += 1
        else:
            counts[outcome] += 1
    telemetry.write(session)
    return counts


def _from_the_future(at: datetime, now: datetime, max_skew: timedelta) -> str:
    ahead = int((at - now).total_seconds())
    return (
        f"dead:report dated {at.isoformat()} is {ahead} s ahead of the hub's clock"
        f" (at most {int(max_skew.total_seconds())} s allowed)"
    )


def _apply_vehicle(
    session: DbSession,
    vehicle: Vehicle,
    payload: Payload,
    root: str,
    now: datetime,
    max_skew: timedelta,
    *,
    exercise: bool = False,
) -> str:
    if isinstance(payload, VehicleStatus):
        if payload.at > now + max_skew:
            return _from_the_future(payload.at, now, max_skew)
        stuck = vehicle.status_at is not None and vehicle.status_at > now + max_skew
        if vehicle.status_at is None or payload.at >= vehicle.status_at or stuck:
            vehicle.status, vehicle.status_note, vehicle.status_at = (
                payload.state.value,
                payload.note,
                payload.at,
            )
        return "status"
    if isinstance(payload, ConnectionState):
        current = ConnectionState(online=vehicle.online, session=vehicle.session)
        if not supersedes(payload, current):
            return "state_stale"
        came_online = payload.online and not (vehicle.online and vehicle.session == payload.session)
        vehicle.online, vehicle.session = payload.online, payload.session
        vehicle.online_changed_at = payload.at or utcnow()
        if came_online:
            commands.resend_pending(session, vehicle, root=root)
        return "state"
    if isinstance(payload, Ack):
        outcome = commands.apply_ack(session, vehicle, payload, exercise=exercise)
        if outcome == "foreign":
            return "dead:ack for a command of another vehicle"
        if outcome == "other_root":
            return "dead:ack under another root than its command (live and exercise never mix)"
        return f"ack_{outcome}"
    return "dead:payload does not belong on a vehicle topic"


def _apply_linkage(session: DbSession, system: LinkageSystem, payload: Payload, exercise: bool) -> str:
    if isinstance(payload, ConnectionState):
        current = ConnectionState(online=system.online, session=system.session)
        if not supersedes(payload, current):
            return "state_stale"
        system.online, system.session = payload.online, payload.session
        system.online_changed_at = payload.at or utcnow()
        return "linkage_state"
    if not isinstance(payload, LinkageEvent):
        return "dead:payload does not belong on a linkage topic"
    if payload.system.value != system.kind:
        return f"dead:event says system {payload.system.value}, but {system.code} is a {system.kind} system"
    link = session.scalar(
        select(LinkageEventLink).where(
            LinkageEventLink.system_id == system.id, LinkageEventLink.event_id == payload.event_id
        )
    )
    snapshot = payload.model_dump(mode="json")
    if link is not None and link.last_payload == snapshot:
        return "event_duplicate"
    actor = Actor("partner", f"linkage:{system.mqtt_username}", system.city_id, Role.COORDINATOR)
    try:
        # A savepoint, so a refused event leaves the rest of the batch intact.
        with session.begin_nested():
            if link is None:
                incident = incidents.create_incident(
                    session,
                    actor,
                    IncidentCreate(
                        category=payload.category,
                        level=payload.level,
                        title=payload.title,
                        description=payload.description,
                        location=payload.location,
                        occurred_at=payload.occurred_at,
                        affected_cities=payload.affected_cities,
                        exercise=exercise,
                    ),
                )
                session.add(
                    LinkageEventLink(
                        system_id=system.id,
                        event_id=payload.event_id,
                        incident_id=incident.id,
                        last_payload=snapshot,
                        updated_at=utcnow(),
                    )
                )
                return "event_created"
            changes = incidents.IncidentChanges(
                level=payload.level,
                affected_cities=tuple(payload.affected_cities),
                status=IncidentStatus.CLOSED if payload.status is LinkageEventStatus.CLOSED else None,
            )
            incidents.update_incident(session, actor, link.incident_id, changes)
            link.last_payload = snapshot
            link.updated_at = utcnow()
            return "event_updated"
    except ServiceError as exc:
        return f"dead:{exc.message}"


# How far back each thinning pass looks before its cutoff: wider than the hour between passes,
# so a hub that was down for a few hours still thins what it missed.
THIN_WINDOW = timedelta(hours=6)


def _minute_of(session: DbSession) -> ColumnElement[object]:
    """Return an expression naming the UTC minute of a position, in the database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("minute", VehiclePosition.at)
    # SQLite stores the time as text, "YYYY-MM-DD HH:MM:SS.ffffff" in UTC.
    return func.substr(VehiclePosition.at, 1, 16)


def thin_positions(session: DbSession, now: datetime, thin_after: timedelta, limit: int = 5000) -> int:
    """Keep one position a minute per vehicle (its first) among those older than `thin_after`.

    Looks at the `THIN_WINDOW` before the cutoff only, so an hourly pass reads a few hours of
    history, not the month the retention keeps. Deletes at most `limit` rows; a caller that got
    `limit` calls again in a new transaction. Returns how many rows went.
    """
    cutoff = now - thin_after
    ranked = (
        select(
            VehiclePosition.id,
            func.row_number()
            .over(
                partition_by=(VehiclePosition.vehicle_id, _minute_of(session)),
                order_by=(VehiclePosition.at, VehiclePosition.seq),
            )
            .label("rank"),
        )
        .where(VehiclePosition.at >= cutoff - THIN_WINDOW, VehiclePosition.at < cutoff)
        .subquery()
    )
    surplus = list(session.scalars(select(ranked.c.id).where(ranked.c.rank > 1).limit(limit)))
    if surplus:
        session.execute(
            delete(VehiclePosition)
            .where(VehiclePosition.id.in_(surplus))
            .execution_options(synchronize_session=False)
        )
    return len(surplus)


def prune_positions(session: DbSession, retention: timedelta) -> int:
    """Delete position history older than the retention period; return how many rows went."""
    cutoff = utcnow() - retention
    result = session.execute(delete(VehiclePosition).where(VehiclePosition.at < cutoff))
    return affected_rows(result)
