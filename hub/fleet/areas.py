"""Areas watched for an incident: which vehicles are inside, and telling the owner when one enters or leaves.

Decided where positions are stored (`hub.fleet.ingest`), right after the border hand-off, from
each vehicle's stored latest position. A vehicle counts as inside once it is `band` metres inside
the circle and as outside once `band` metres beyond it: a vehicle parked on the edge, or a road
running along it, does not flap. The band is `BAND_M`, or a fifth of the radius for a small circle.

Presence is a row per (area, vehicle): entering inserts it, leaving deletes it, and only the writer
whose statement changed a row records the event, so several ingest workers record each once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.fleet.models import Vehicle, WatchArea, WatchAreaEvent, WatchAreaPresence
from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput, NotFound
from hub.kernel.types import DbSession, affected_rows, utcnow

BAND_M = 150.0
MIN_RADIUS_M = 100.0
MAX_RADIUS_M = 50_000.0


@dataclass(frozen=True)
class Circle:
    """A circle on the ground: centre in WGS-84 degrees, radius in metres."""

    latitude: float
    longitude: float
    radius_m: float

    def distance_m(self, lat: float, lon: float) -> float:
        """Return the distance from the centre, in metres (flat-earth, good to a few tens of km)."""
        kx = 111_320.0 * math.cos(math.radians((lat + self.latitude) / 2))
        return math.hypot((lon - self.longitude) * kx, (lat - self.latitude) * 110_574.0)

    @property
    def band_m(self) -> float:
        return min(BAND_M, self.radius_m / 5)


def _circle(area: WatchArea) -> Circle:
    return Circle(area.latitude, area.longitude, area.radius_m)


def watch_circle(
    session: DbSession,
    actor: Actor,
    *,
    incident_id: int,
    owner_city_id: int,
    latitude: float,
    longitude: float,
    radius_m: float,
) -> WatchArea:
    """Start watching a circle for an incident of the actor's city (its previous circle ends)."""
    if not actor.can_write_incidents or actor.city_id != owner_city_id:
        raise Forbidden("only the incident's own city watches an area for it", reason="own_city_only")
    if not MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M:
        raise InvalidInput(
            f"the radius must be between {MIN_RADIUS_M:.0f} and {MAX_RADIUS_M:.0f} metres",
            reason="area_radius",
        )
    now = utcnow()
    for previous in active_for_incident(session, incident_id):
        previous.ended_at = now
    area = WatchArea(
        incident_id=incident_id,
        city_id=owner_city_id,
        latitude=latitude,
        longitude=longitude,
        radius_m=radius_m,
        created_at=now,
        created_by_id=actor.user_id,
    )
    session.add(area)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.area_watched",
        "incident",
        incident_id,
        after={"latitude": latitude, "longitude": longitude, "radius_m": radius_m},
    )
    # Vehicles already inside count from now, and are told like any that drives in later.
    settle(session, list(session.scalars(select(Vehicle.id).where(Vehicle.position_at.is_not(None)))))
    return area


def end_watch(session: DbSession, actor: Actor, area_id: int) -> WatchArea:
    """Stop watching an area."""
    area = session.get(WatchArea, area_id)
    if area is None:
        raise NotFound(f"no area {area_id}")
    if not actor.can_write_incidents or actor.city_id != area.city_id:
        raise Forbidden("only the incident's own city ends its area", reason="own_city_only")
    if area.ended_at is None:
        area.ended_at = utcnow()
        audit.record(session, actor, "incident.area_ended", "incident", area.incident_id)
    return area


def active_for_incident(session: DbSession, incident_id: int) -> list[WatchArea]:
    """Return the incident's areas being watched."""
    query = select(WatchArea).where(WatchArea.incident_id == incident_id, WatchArea.ended_at.is_(None))
    return list(session.scalars(query.order_by(WatchArea.id)))


def events_for_incident(session: DbSession, incident_id: int) -> list[WatchAreaEvent]:
    """Return the vehicles' entries into and exits from the incident's areas, oldest first."""
    query = select(WatchAreaEvent).join(WatchArea).where(WatchArea.incident_id == incident_id)
    return list(session.scalars(query.order_by(WatchAreaEvent.at, WatchAreaEvent.id)))


def inside(session: DbSession, area_id: int) -> list[int]:
    """Return the ids of the vehicles counted inside an area."""
    query = select(WatchAreaPresence.vehicle_id).where(WatchAreaPresence.area_id == area_id)
    return sorted(session.scalars(query))


def _insert_presence(session: DbSession, area_id: int, vehicle_id: int, since: datetime) -> bool:
    """Count a vehicle inside; return whether this statement did (another writer may have)."""
    dialect = session.connection().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = maker(WatchAreaPresence).values(area_id=area_id, vehicle_id=vehicle_id, since=since)
    return affected_rows(session.execute(statement.on_conflict_do_nothing())) == 1


def settle(session: DbSession, vehicle_ids: list[int]) -> list[WatchAreaEvent]:
    """Decide again which watched areas these vehicles are in, from their stored latest positions."""
    if not vehicle_ids:
        return []
    areas = list(session.scalars(select(WatchArea).where(WatchArea.ended_at.is_(None))))
    if not areas:
        return []  # the common case: nothing watched, nothing more to read
    rows = session.execute(
        select(Vehicle.id, Vehicle.latitude, Vehicle.longitude, Vehicle.position_at).where(
            Vehicle.id.in_(vehicle_ids), Vehicle.position_at.is_not(None)
        )
    ).all()
    present = set(
        session.execute(
            select(WatchAreaPresence.area_id, WatchAreaPresence.vehicle_id).where(
                WatchAreaPresence.vehicle_id.in_(vehicle_ids),
                WatchAreaPresence.area_id.in_([a.id for a in areas]),
            )
        ).tuples()
    )
    events = []
    for area in areas:
        circle = _circle(area)
        for vehicle_id, lat, lon, at in rows:
            if lat is None or lon is None or at is None:
                continue
            distance = circle.distance_m(lat, lon)
            was_inside = (area.id, vehicle_id) in present
            if not was_inside and distance <= circle.radius_m - circle.band_m:
                if not _insert_presence(session, area.id, vehicle_id, at):
                    continue
                entered = True
            elif was_inside and distance >= circle.radius_m + circle.band_m:
                gone = session.execute(
                    delete(WatchAreaPresence).where(
                        and_(WatchAreaPresence.area_id == area.id, WatchAreaPresence.vehicle_id == vehicle_id)
                    )
                )
                if affected_rows(gone) != 1:
                    continue
                entered = False
            else:
                continue
            event = WatchAreaEvent(
                area_id=area.id, vehicle_id=vehicle_id, entered=entered, at=at, latitude=lat, longitude=lon
            )
            session.add(event)
            events.append(event)
    if events:
        session.flush()
    return events


def recent_events_for_city(session: DbSession, city_id: int, limit: int = 20) -> list[WatchAreaEvent]:
    """Return the latest entries and exits of the areas a city watches now, newest first."""
    query = (
        select(WatchAreaEvent)
        .join(WatchArea)
        .where(WatchArea.city_id == city_id, WatchArea.ended_at.is_(None))
        .order_by(WatchAreaEvent.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def latest_event_by_city(session: DbSession) -> dict[int, tuple[int, int]]:
    """Per watching city: how many events its active areas have and the newest one's id."""
    query = (
        select(WatchArea.city_id, func.count(WatchAreaEvent.id), func.max(WatchAreaEvent.id))
        .join(WatchAreaEvent, WatchAreaEvent.area_id == WatchArea.id)
        .where(WatchArea.ended_at.is_(None))
        .group_by(WatchArea.city_id)
    )
    return {city_id: (count, newest) for city_id, count, newest in session.execute(query)}
