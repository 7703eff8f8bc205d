"""Who the mutual-aid work is waiting on: per city, per request, and what a city waits on others for.

All of it is `services.owed` seen from another side: what a city owes is what the other party
waits for, so the desk's urgent list, the waiting list and a request's "waiting on" never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from hub.kernel.models import City
from hub.kernel.types import DbSession
from hub.mutual_aid import services
from hub.mutual_aid.models import AidAsk, AidCommitment, AidRequest

_NO_DEADLINE = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Waiting:
    """One thing a city owes on mutual aid, with the city that owes it."""

    city: City
    item: services.OwedItem

    @property
    def counterpart(self) -> City:
        """Return the city waiting for it: the requester for an answer, else the other party."""
        commitment = self.item.commitment
        if commitment is None:
            return self.item.request.requesting_city
        if commitment.owner_city_id == self.city.id:
            return commitment.requesting_city
        return commitment.owner_city


def _soonest(found: Iterable[Waiting]) -> list[Waiting]:
    return sorted(found, key=lambda w: (w.item.due_at or _NO_DEADLINE, w.city.id))


def _owed_by(session: DbSession, city_ids: Iterable[int]) -> list[Waiting]:
    cities = {c.id: c for c in session.scalars(select(City).where(City.id.in_(set(city_ids))))}
    return [Waiting(city, item) for city in cities.values() for item in services.owed(session, city.id)]


def on_request(session: DbSession, request: AidRequest) -> list[Waiting]:
    """Return who a request is waiting on, and for what, soonest deadline first."""
    parties = {request.requesting_city_id}
    parties.update(session.scalars(select(AidAsk.city_id).where(AidAsk.request_id == request.id)))
    parties.update(
        session.scalars(select(AidCommitment.owner_city_id).where(AidCommitment.request_id == request.id))
    )
    return _soonest(w for w in _owed_by(session, parties) if w.item.request.id == request.id)


def for_city(session: DbSession, city_id: int) -> list[Waiting]:
    """Return what other cities owe the city on mutual aid (what it waits for), soonest first."""
    mine = select(AidRequest.id).where(AidRequest.requesting_city_id == city_id)
    others: set[int] = set(session.scalars(select(AidAsk.city_id).where(AidAsk.request_id.in_(mine))))
    for owner, requester in session.execute(
        select(AidCommitment.owner_city_id, AidCommitment.requesting_city_id).where(
            (AidCommitment.owner_city_id == city_id) | (AidCommitment.requesting_city_id == city_id)
        )
    ):
        others.update((owner, requester))
    others.discard(city_id)
    return _soonest(w for w in _owed_by(session, others) if w.counterpart.id == city_id)


def by_city(session: DbSession, first: int | None = None) -> list[tuple[City, list[Waiting]]]:
    """Return, for every member city (`first` at the top), the mutual-aid work waiting on it."""
    cities = list(session.scalars(select(City).order_by(City.id)))
    cities.sort(key=lambda c: c.id != first)
    return [
        (city, _soonest(Waiting(city, item) for item in services.owed(session, city.id))) for city in cities
    ]
