"""What the verifications capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.capabilities import DeskItem
from hub.kernel.types import DbSession
from hub.verifications import services

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Verification requests the city has to answer, by their deadline."""
    return [DeskItem("verifications/_urgent.html", v, v.deadline) for v in services.owed_by(session, city_id)]


def waiting(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """The city's own requests that still wait for an answer."""
    return [
        DeskItem("verifications/_waiting.html", r, r.deadline)
        for r in services.for_city(session, city_id)
        if r.from_city_id == city_id and r.answered_at is None
    ]
