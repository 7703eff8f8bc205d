"""What the mutual-aid capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.capabilities import DeskItem
from hub.kernel.types import DbSession
from hub.mutual_aid import services, upkeep

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """What the city owes: answers, offers to accept, holds to authorise, arrivals, returns, signatures.

    Registry entries not verified lately come last, as one item with how many and since when.
    """
    items = [
        DeskItem("mutual_aid/_urgent.html", item, item.due_at) for item in services.owed(session, city_id)
    ]
    stale = upkeep.unverified(session, city_id, settings)
    if stale is not None:
        items.append(DeskItem("mutual_aid/_verify.html", stale, key=f"mutual_aid:verify:{city_id}"))
    return items
