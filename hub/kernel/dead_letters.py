"""Keep inbound messages that broke their contract, for a person to look at.

A dead letter belongs to the city it came from or for, when that can be told (a partner
platform's feed, an MQTT topic under a city's subtree): that city's people see it, the hub's
administrators see every one, and a letter no city can be told for is the administrators' alone.
"""

from __future__ import annotations

from sqlalchemy import func, select

from hub.kernel.models import City, DeadLetter
from hub.kernel.types import DbSession, utcnow

MAX_KEPT = 4096  # bytes of the payload kept: enough to see what went wrong, bounded on purpose


def record(
    session: DbSession, source: str, topic: str, reason: str, payload: bytes, *, city_id: int | None = None
) -> DeadLetter:
    """Store a dead letter with a bounded copy of the payload, for `city_id` or its MQTT topic's city."""
    if city_id is None and source == "mqtt":
        city_id = _city_of_topic(session, topic)
    letter = DeadLetter(
        source=source,
        topic=topic[:256],
        reason=reason[:2000],
        received_at=utcnow(),
        size=len(payload),
        payload=bytes(payload[:MAX_KEPT]),
        city_id=city_id,
    )
    session.add(letter)
    return letter


def _city_of_topic(session: DbSession, topic: str) -> int | None:
    """Return the member city whose subtree (`<root>/v1/<city>/…`) the topic lies in, if any."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[1] != "v1":
        return None
    return session.scalar(select(City.id).where(City.slug == parts[2]))


def recent(session: DbSession, limit: int = 100, *, city_id: int | None = None) -> list[DeadLetter]:
    """Return the newest dead letters first: a city's, or (None) every one."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if city_id is not None:
        query = query.where(DeadLetter.city_id == city_id)
    return list(session.scalars(query))


def count(session: DbSession, *, city_id: int | None = None) -> int:
    """Return how many dead letters there are: a city's, or (None) every one."""
    query = select(func.count()).select_from(DeadLetter)
    if city_id is not None:
        query = query.where(DeadLetter.city_id == city_id)
    return session.scalar(query) or 0
