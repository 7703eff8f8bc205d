"""What the fleet puts on a city's desk: its command vehicles that went off the air, other
cities' vehicles that have entered it (hub/fleet/borders.py), and vehicles entering or leaving
the areas it watches for its incidents (hub/fleet/areas.py)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import case, func, select

from hub.capabilities import DeskItem
from hub.fleet import areas
from hub.fleet.models import Vehicle, WatchAreaEvent
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def offline(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """The city's vehicles that were on the air and are not now; each going-off alerts once."""
    query = select(Vehicle).where(
        Vehicle.city_id == city_id, Vehicle.online.is_(False), Vehicle.online_changed_at.is_not(None)
    )
    found = session.scalars(query.order_by(Vehicle.online_changed_at))
    return [_alert("fleet/_urgent.html", v, f"fleet:offline:{v.id}:{v.session}") for v in found]


def entered(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Other cities' vehicles now in the city; each entry alerts once, until acknowledged."""
    query = select(Vehicle).where(Vehicle.area_city_id == city_id, Vehicle.city_id != city_id)
    found = session.scalars(query.order_by(Vehicle.area_since))
    return [_alert("fleet/_entered.html", v, f"fleet:entered:{v.id}:{_stamp(v.area_since)}") for v in found]


def area_events(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Vehicles entering or leaving the areas the city watches; each alerts once, until acknowledged."""
    found = areas.recent_events_for_city(session, city_id)
    return [DeskItem("fleet/_area_event.html", e, key=f"fleet:area:{e.id}", alert=True) for e in found]


def _alert(template: str, vehicle: Vehicle, key: str) -> DeskItem:
    return DeskItem(template, vehicle, key=key, alert=True)


def _stamp(at: datetime | None) -> int:
    return int(at.timestamp()) if at is not None else 0


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """The fleet's urgent items: its own vehicles off the air, other cities' vehicles in it, its areas."""
    return (
        offline(session, city_id, settings)
        + entered(session, city_id, settings)
        + area_events(session, city_id, settings)
    )


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: its vehicles on the air and the latest change, and other cities' vehicles in it."""
    query = select(
        Vehicle.city_id,
        func.count(),
        func.sum(case((Vehicle.online.is_(True), 1), else_=0)),
        func.max(Vehicle.online_changed_at),
    ).group_by(Vehicle.city_id)
    found: dict[int | None, object] = {row[0]: tuple(row[1:]) for row in session.execute(query)}
    visiting = (
        select(Vehicle.area_city_id, func.count(), func.max(Vehicle.area_since))
        .where(Vehicle.area_city_id.is_not(None), Vehicle.area_city_id != Vehicle.city_id)
        .group_by(Vehicle.area_city_id)
    )
    for city_id, count, latest in session.execute(visiting):
        found[city_id] = (found.get(city_id), count, latest)
    for city_id, watched in areas.latest_event_by_city(session).items():
        found[city_id] = (found.get(city_id), watched)
    return found


def probe(session: DbSession) -> object:
    """Vehicles going on and off the air or across borders are not audited: their latest changes."""
    return session.execute(
        select(
            func.max(Vehicle.online_changed_at),
            func.sum(case((Vehicle.online.is_(True), 1), else_=0)),
            func.max(Vehicle.area_since),
            select(func.max(WatchAreaEvent.id)).scalar_subquery(),
        )
    ).one()
