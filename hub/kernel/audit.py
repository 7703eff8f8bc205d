"""Write and read the append-only audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select

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


@dataclass(frozen=True)
class AuditFilter:
    """Filters for reading the audit trail; None means any."""

    city_id: int | None = None
    person: str | None = None  # part of the actor's name (user name, token name or process)
    action: str | None = None  # an action code ("incident.created"), or its area ("incident.")
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


def _filtered(filters: AuditFilter) -> Select[AuditEntry]:
    query = select(AuditEntry)
    if filters.city_id is not None:
        query = query.where(AuditEntry.city_id == filters.city_id)
    if filters.person:
        query = query.where(AuditEntry.actor.icontains(filters.person, autoescape=True))
    if filters.action:
        if filters.action.endswith("."):
            query = query.where(AuditEntry.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEntry.action == filters.action)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.at < filters.until)
    return query


def search(
    session: DbSession, filters: AuditFilter, *, limit: int = 100, offset: int = 0
) -> list[AuditEntry]:
    """Return the entries that pass the filters, newest first."""
    query = _filtered(filters).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def count(session: DbSession, filters: AuditFilter) -> int:
    """Return how many entries pass the filters."""
    return session.scalar(select(func.count()).select_from(_filtered(filters).subquery())) or 0


def recent(
    session: DbSession, *, city_id: int | None = None, limit: int = 200, offset: int = 0
) -> list[AuditEntry]:
    """Return the newest entries first, optionally for one city."""
    return search(session, AuditFilter(city_id=city_id), limit=limit, offset=offset)
