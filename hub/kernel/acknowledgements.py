"""Acknowledgements of urgent desk items: a person of the city saw it, and when.

An item is named by its desk key ("<capability>:<kind>:<id>[:<stage>]", see `DeskItem.key`), so
any capability can record one (a notice marked read records its own) and the desk can show it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, NotFound
from hub.kernel.models import DeskAcknowledgement, User
from hub.kernel.types import DbSession, utcnow

MAX_KEY = 128


def acknowledge(session: DbSession, actor: Actor, item_key: str) -> DeskAcknowledgement:
    """Record that a person of the actor's city saw an urgent item; a second time changes nothing."""
    if not item_key or len(item_key) > MAX_KEY or ":" not in item_key:
        raise NotFound(f"no desk item {item_key!r}")
    if actor.city_id is None or not actor.can_write_incidents:
        raise Forbidden("only the city's coordinators and duty officers acknowledge desk items")
    found = session.scalar(
        select(DeskAcknowledgement).where(
            DeskAcknowledgement.city_id == actor.city_id, DeskAcknowledgement.item_key == item_key
        )
    )
    if found is not None:
        return found
    user = session.get(User, actor.user_id) if actor.user_id is not None else None
    ack = DeskAcknowledgement(
        city_id=actor.city_id,
        item_key=item_key,
        user_id=actor.user_id,
        acknowledged_by=(user.display_name if user is not None else actor.name)[:128],
        acknowledged_at=utcnow(),
    )
    session.add(ack)
    session.flush()
    audit.record(
        session, actor, "desk.acknowledged", "desk_acknowledgement", ack.id, after={"item": item_key}
    )
    return ack


def for_keys(session: DbSession, city_id: int, keys: Iterable[str]) -> dict[str, DeskAcknowledgement]:
    """Return the city's acknowledgements of these items, by key."""
    wanted = [key for key in keys if key]
    if not wanted:
        return {}
    query = select(DeskAcknowledgement).where(
        DeskAcknowledgement.city_id == city_id, DeskAcknowledgement.item_key.in_(wanted)
    )
    return {ack.item_key: ack for ack in session.scalars(query)}
