"""Write and read the append-only audit trail."""

from __future__ import annotations

from sqlalchemy import select

from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry
from hub.kernel.types import DbSession


def record(
    session: DbSession,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: int | None,
    *,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
    city_id: int | None = None,
) -> AuditEntry:
    """Add one audit entry for a change the caller is about to commit."""
    entry = AuditEntry(
        actor_kind=actor.kind,
        actor=actor.name,
        actor_user_id=actor.user_id,
        city_id=city_id if city_id is not None else actor.city_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def recent(
    session: DbSession, *, city_id: int | None = None, limit: int = 200, offset: int = 0
) -> list[AuditEntry]:
    """Return the newest entries first, optionally for one city."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if city_id is not None:
        query = query.where(AuditEntry.city_id == city_id)
    return list(session.scalars(query))
