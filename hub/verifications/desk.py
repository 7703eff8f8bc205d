"""What the verifications capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub.capabilities import DeskItem
from hub.kernel.types import DbSession
from hub.verifications import services
from hub.verifications.models import VerificationRequest

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Verification requests the city has to answer, by their deadline."""
    return [
        DeskItem("verifications/_urgent.html", v, v.deadline, key=f"verifications:request:{v.id}")
        for v in services.owed_by(session, city_id)
    ]


def waiting(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """The city's own requests that still wait for an answer."""
    return [
        DeskItem("verifications/_waiting.html", r, r.deadline)
        for r in services.for_city(session, city_id)
        if r.from_city_id == city_id and r.answered_at is None
    ]


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: the requests it must answer and those it sent, with how many are answered."""
    found: dict[int | None, object] = {}
    for column in (VerificationRequest.to_city_id, VerificationRequest.from_city_id):
        query = select(
            column,
            func.count(),
            func.max(VerificationRequest.id),
            func.count(VerificationRequest.answered_at),
            func.count(VerificationRequest.delivered_at),
            func.count(VerificationRequest.flagged_at),
        ).group_by(column)
        for city_id, *values in session.execute(query):
            found[city_id] = (found.get(city_id), *values)
    return found
