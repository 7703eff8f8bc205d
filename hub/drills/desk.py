"""What the drills capability puts on a city's desk: exercise notices it has not read yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub.capabilities import DeskItem
from hub.drills import services
from hub.drills.models import Drill, DrillInject, DrillResponse
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Exercise notices delivered to the city and not yet read, oldest first (each marked 【演练】)."""
    return [
        DeskItem("drills/_urgent.html", row, row.delivered_at, key=f"drills:inject:{row.id}", exercise=True)
        for row in services.unread_notices(session, city_id)
    ]


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: exercise injects delivered to it and its responses; the drills' states for all."""
    injects = select(
        DrillInject.city_id, func.count(DrillInject.delivered_at), func.max(DrillInject.id)
    ).group_by(DrillInject.city_id)
    found: dict[int | None, object] = {city_id: (n, last) for city_id, n, last in session.execute(injects)}
    responses = select(DrillResponse.city_id, func.count(), func.max(DrillResponse.id)).group_by(
        DrillResponse.city_id
    )
    for city_id, n, last in session.execute(responses):
        found[city_id] = (found.get(city_id), n, last)
    states = (
        select(Drill.status, func.count(), func.max(Drill.id)).group_by(Drill.status).order_by(Drill.status)
    )
    found[None] = tuple(tuple(row) for row in session.execute(states))
    return found
