"""What the fleet puts on a city's desk: its command vehicles that went off the air."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import case, func, select

from hub.capabilities import DeskItem
from hub.fleet.models import Vehicle
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """The city's vehicles that were on the air and are not now; each going-off alerts once."""
    query = select(Vehicle).where(
        Vehicle.city_id == city_id, Vehicle.online.is_(False), Vehicle.online_changed_at.is_not(None)
    )
    return [
        DeskItem(
            "fleet/_urgent.html",
            vehicle,
            key=f"fleet:offline:{vehicle.id}:{vehicle.session}",
            alert=True,
        )
        for vehicle in session.scalars(query.order_by(Vehicle.online_changed_at))
    ]


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: how many of its vehicles are on the air, and the latest change of that."""
    query = select(
        Vehicle.city_id,
        func.count(),
        func.sum(case((Vehicle.online.is_(True), 1), else_=0)),
        func.max(Vehicle.online_changed_at),
    ).group_by(Vehicle.city_id)
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def probe(session: DbSession) -> object:
    """Vehicles going on and off the air are not audited: their latest change of state."""
    return session.execute(
        select(func.max(Vehicle.online_changed_at), func.sum(case((Vehicle.online.is_(True), 1), else_=0)))
    ).one()
