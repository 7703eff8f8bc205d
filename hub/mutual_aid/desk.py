"""What the mutual-aid capability puts on a city's desk, and the token that says when it changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from contracts.mutual_aid import AidState
from hub.capabilities import DeskItem
from hub.kernel.models import Reminder
from hub.kernel.types import DbSession, utcnow
from hub.mutual_aid import services, upkeep
from hub.mutual_aid import waiting as aid_waiting
from hub.mutual_aid.models import AidAsk, AidCommitment, AidRequest

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """What the city owes: answers, offers to accept, holds to authorise, arrivals, returns, signatures.

    A request of the city's that ended unfilled (nobody could help) stands there for a day, and
    sounds once: the city must look for help elsewhere. Registry entries not verified lately come
    last, as one item with how many and since when.
    """
    items = [
        DeskItem("mutual_aid/_urgent.html", item, item.due_at) for item in services.owed(session, city_id)
    ]
    items += [
        DeskItem(
            "mutual_aid/_unfilled.html",
            request,
            key=f"mutual_aid:unfilled:{request.id}",
            exercise=request.exercise,
            alert=True,
        )
        for request in upkeep.unfilled_lately(session, city_id)
    ]
    stale = upkeep.unverified(session, city_id, settings)
    if stale is not None:
        items.append(DeskItem("mutual_aid/_verify.html", stale, key=f"mutual_aid:verify:{city_id}"))
    return items


def waiting(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """What the city waits on other cities for: their answers, authorisations, arrivals, returns."""
    return [
        DeskItem("mutual_aid/_waiting.html", found, found.item.due_at)
        for found in aid_waiting.for_city(session, city_id)
    ]


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: its commitments on either side, the requests it made or was asked about, by now.

    Every step moves a commitment's `updated_at`; answers and deadlines passing move the asks'
    counts; a city asked about a request follows all of that request's commitments and asks, so
    its request pages stay live too.
    """
    now = utcnow()
    found: dict[int | None, object] = {}

    def add(rows: object) -> None:
        for city_id, *rest in rows:  # type: ignore[attr-defined]
            found[city_id] = (found.get(city_id), *rest)

    c = AidCommitment
    for side in (c.owner_city_id, c.requesting_city_id):
        add(session.execute(select(side, func.count(), func.max(c.updated_at)).group_by(side)))
    add(
        session.execute(
            select(AidAsk.city_id, func.count(c.id), func.max(c.updated_at))
            .join(c, c.request_id == AidAsk.request_id)
            .group_by(AidAsk.city_id)
        )
    )
    other = aliased(AidAsk)
    late = case(((other.answered_at.is_(None)) & (other.deadline <= now), 1), else_=0)
    add(
        session.execute(
            select(AidAsk.city_id, func.count(other.id), func.count(other.answered_at), func.sum(late))
            .join(other, other.request_id == AidAsk.request_id)
            .group_by(AidAsk.city_id)
        )
    )
    asks_late = case(((AidAsk.answered_at.is_(None)) & (AidAsk.deadline <= now), 1), else_=0)
    add(
        session.execute(
            select(
                AidRequest.requesting_city_id,
                func.count(AidRequest.id.distinct()),
                func.max(AidRequest.updated_at),
                func.count(AidAsk.id),
                func.count(AidAsk.answered_at),
                func.sum(asks_late),
            )
            .outerjoin(AidAsk, AidAsk.request_id == AidRequest.id)
            .group_by(AidRequest.requesting_city_id)
        )
    )
    holds_late = case((c.accepted_at <= now - services.HOLD_WINDOW, 1), else_=0)
    add(
        session.execute(
            select(c.owner_city_id, func.sum(holds_late))
            .where(c.state == AidState.ACCEPTED.value)
            .group_by(c.owner_city_id)
        )
    )
    add(
        session.execute(
            select(Reminder.city_id, func.count(), func.max(Reminder.id))
            .where(Reminder.kind.in_(("aid_ask", "aid_arrival")))
            .group_by(Reminder.city_id)
        )
    )
    return found
