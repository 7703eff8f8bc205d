"""What the drills capability puts on a city's desk: exercise notices it has not read yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.capabilities import DeskItem
from hub.drills import services
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Exercise notices delivered to the city and not yet read, oldest first (each marked 【演练】)."""
    return [
        DeskItem("drills/_urgent.html", row, row.delivered_at)
        for row in services.unread_notices(session, city_id)
    ]
