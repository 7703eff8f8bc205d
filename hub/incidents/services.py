"""Record, follow up and read incidents; decide when the neighbours must be told."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import selectinload

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, ReportKind
from contracts.incidents import FollowUpCreate, IncidentCreate
from contracts.incidents import IncidentFollowUp as FollowUpContract
from contracts.incidents import IncidentReport as IncidentContract
from hub.incidents import notifications
from hub.incidents.models import Incident, IncidentReport, incident_affected_cities
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, User
from hub.kernel.types import DbSession, utcnow

NOTIFY_NEIGHBOURS = "notify-neighbours"
# Level III (较大) or more severe starts the regional notification.
NOTIFY_AT_LEVEL = IncidentLevel.III
# A reporter's clock may run a little ahead of the hub's.
_CLOCK_SKEW = timedelta(minutes=5)


def snapshot(incident: Incident) -> dict[str, object]:
    """Return the fields of an incident as the audit trail keeps them."""
    return {
        "category": incident.category.value,
        "level": IncidentLevel(incident.level).roman,
        "title": incident.title,
        "description": incident.description,
        "location": incident.location,
        "latitude": incident.latitude,
        "longitude": incident.longitude,
        "occurred_at": incident.occurred_at.isoformat(),
        "status": incident.status.value,
        "exercise": incident.exercise,
        "affected_cities": [c.slug for c in incident.affected_cities],
        **{name: getattr(incident, name) for name in ("source", "nature", *SITUATION_FIELDS)},
    }


# The fields of a standard report that the first report and every follow-up carry.
SITUATION_FIELDS = ("extent", "trend", "measures", "deaths", "injured", "missing")


def _situation(data: IncidentCreate | FollowUpCreate) -> dict[str, object]:
    return {name: getattr(data, name) for name in SITUATION_FIELDS}


def _require_writer_for(actor: Actor, city_id: int, what: str) -> None:
    if not actor.can_write_incidents:
        raise Forbidden(f"your role may not {what}")
    if actor.city_id != city_id:
        raise Forbidden(f"you may {what} for your own city only", reason="own_city_only")


def needs_regional_notice(incident: Incident) -> bool:
    """Return whether the incident qualifies for notifying the neighbouring cities."""
    return incident.level <= NOTIFY_AT_LEVEL or len(incident.affected_cities) > 1


def _request_notification(session: DbSession, incident: Incident) -> None:
    if needs_regional_notice(incident):
        flow_requests.enqueue(
            session,
            NOTIFY_NEIGHBOURS,
            key=f"{NOTIFY_NEIGHBOURS}:{incident.public_id}:L{incident.level}"
            f":{','.join(sorted(c.slug for c in incident.affected_cities))}",
            parameters={"incident_id": incident.id},
        )


def create_incident(session: DbSession, actor: Actor, data: IncidentCreate) -> Incident:
    """Record an incident for the actor's own city and request the regional notice if it qualifies."""
    if actor.city_id is None:
        raise Forbidden("only a person or platform of a member city records incidents")
    _require_writer_for(actor, actor.city_id, "record incidents")
    affected = cities.by_slugs(session, list(data.affected_cities))
    now = utcnow()
    if data.occurred_at > now.replace(microsecond=0) + _CLOCK_SKEW:
        raise InvalidInput("occurred_at is in the future", reason="occurred_in_future")
    incident = Incident(
        category=data.category,
        level=int(data.level),
        title=data.title,
        description=data.description,
        location=data.location,
        latitude=data.latitude,
        longitude=data.longitude,
        occurred_at=data.occurred_at,
        reported_at=now,
        updated_at=now,
        reporting_city_id=actor.city_id,
        status=IncidentStatus.REPORTED,
        exercise=data.exercise,
        created_by_id=actor.user_id,
        affected_cities=affected,
        source=data.source,
        nature=data.nature,
        **_situation(data),
    )
    session.add(incident)
    session.flush()
    audit.record(session, actor, "incident.created", "incident", incident.id, after=snapshot(incident))
    _request_notification(session, incident)
    return incident


def add_report(session: DbSession, actor: Actor, incident_id: int, data: FollowUpCreate) -> IncidentReport:
    """Add a follow-up or final report to an incident of the actor's own city."""
    incident = get_incident(session, incident_id)
    _require_writer_for(actor, incident.reporting_city_id, "report on incidents")
    if incident.status is IncidentStatus.CLOSED:
        raise Conflict("the incident is closed; no further reports are accepted", reason="incident_closed")
    report = IncidentReport(
        incident=incident,
        kind=data.kind,
        body=data.body,
        reported_at=utcnow(),
        city_id=actor.city_id,
        author_id=actor.user_id,
        location=data.location,
        latitude=data.latitude,
        longitude=data.longitude,
        **_situation(data),
    )
    session.add(report)
    before = snapshot(incident)
    # The latest known casualties and situation are the incident's own: a 续报 that gives a
    # figure replaces the one before; one that leaves it out keeps it.
    for name, value in _situation(data).items():
        if value not in (None, ""):
            setattr(incident, name, value)
    if data.kind is ReportKind.FINAL:
        incident.status = IncidentStatus.CLOSED
    elif incident.status is IncidentStatus.REPORTED:
        incident.status = IncidentStatus.RESPONDING
    incident.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "incident.report_added",
        "incident",
        incident.id,
        before=before,
        after={**snapshot(incident), "report": {"kind": data.kind.value, "body": data.body}},
    )
    changes: dict[str, object] = {"report": {"kind": data.kind.value, "body": data.body}}
    if before["status"] != incident.status.value:
        changes["status"] = [before["status"], incident.status.value]
    notifications.record_update(session, incident, changes)
    return report


def changes_between(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    """Return what the cities already told must hear of: level, status, affected cities."""
    changes: dict[str, object] = {}
    for field_name in ("level", "status"):
        if before[field_name] != after[field_name]:
            changes[field_name] = [before[field_name], after[field_name]]
    was, now = before["affected_cities"], after["affected_cities"]
    assert isinstance(was, list) and isinstance(now, list)
    if added := [slug for slug in now if slug not in was]:
        changes["added"] = added
    if removed := [slug for slug in was if slug not in now]:
        changes["removed"] = removed
    return changes


@dataclass(frozen=True)
class IncidentChanges:
    """Fields a coordinator may change after recording; None leaves a field as it is."""

    level: IncidentLevel | None = None
    status: IncidentStatus | None = None
    affected_cities: tuple[str, ...] | None = None


def update_incident(session: DbSession, actor: Actor, incident_id: int, changes: IncidentChanges) -> Incident:
    """Change level, status or affected cities; a change that now qualifies notifies the neighbours."""
    incident = get_incident(session, incident_id)
    _require_writer_for(actor, incident.reporting_city_id, "edit incidents")
    before = snapshot(incident)
    if changes.level is not None:
        incident.level = int(changes.level)
    if changes.status is not None:
        incident.status = changes.status
    if changes.affected_cities is not None:
        if not changes.affected_cities:
            raise InvalidInput("an incident affects at least one city", reason="no_affected_city")
        incident.affected_cities = cities.by_slugs(session, list(changes.affected_cities))
    after = snapshot(incident)
    if after == before:
        return incident
    incident.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "incident.updated", "incident", incident.id, before=before, after=after)
    if changes_to_tell := changes_between(before, after):
        notifications.record_update(session, incident, changes_to_tell)
    _request_notification(session, incident)
    return incident


def exists(session: DbSession, incident_id: int) -> bool:
    """Tell whether an incident with this id is recorded."""
    return session.get(Incident, incident_id) is not None


def get_incident(session: DbSession, incident_id: int) -> Incident:
    """Return one incident with its cities and reports, or fail."""
    incident = session.scalar(
        select(Incident)
        .where(Incident.id == incident_id)
        .options(selectinload(Incident.affected_cities), selectinload(Incident.reports))
    )
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def id_for_public_id(session: DbSession, public_id: uuid.UUID) -> int:
    """Return the hub's id of an incident known by its exchange id, or fail."""
    incident_id = session.scalar(select(Incident.id).where(Incident.public_id == public_id))
    if incident_id is None:
        raise NotFound(f"no incident {public_id}")
    return incident_id


@dataclass(frozen=True)
class IncidentFilter:
    """Filters for listing incidents; None means any."""

    city: str | None = None  # reporting or affected
    level_at_most: int | None = None  # 2 means I and II
    category: IncidentCategory | None = None
    status: IncidentStatus | None = None
    open_only: bool = False
    exercise: bool | None = None
    since: datetime | None = None  # reported at or after
    until: datetime | None = None  # reported before
    person: str | None = None  # part of the recording person's user or display name
    text: str | None = None  # part of the title, location or description


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    items: list[Incident]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


MAX_PER_PAGE = 100


def list_incidents(session: DbSession, filters: IncidentFilter, *, page: int = 1, per_page: int = 20) -> Page:
    """Return a page of incidents, most recently reported first."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput(f"page must be >= 1 and per_page between 1 and {MAX_PER_PAGE}")
    query = _filtered(session, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return Page(
        newest_incidents(session, filters, per_page, offset=(page - 1) * per_page), total, page, per_page
    )


def newest_incidents(
    session: DbSession, filters: IncidentFilter, limit: int, *, offset: int = 0
) -> list[Incident]:
    """Return the `limit` most recently reported incidents that pass the filters (no count)."""
    items = session.scalars(
        _filtered(session, filters)
        .options(selectinload(Incident.affected_cities))
        .order_by(Incident.reported_at.desc(), Incident.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(items)


def _filtered(session: DbSession, filters: IncidentFilter) -> Select[Incident]:
    """Return the query of the incidents that pass the filters, in the database's hands."""
    query = select(Incident)
    if filters.city is not None:
        query = query.where(_concerns(cities.by_slug(session, filters.city)))
    if filters.level_at_most is not None:
        query = query.where(Incident.level <= filters.level_at_most)
    if filters.category is not None:
        query = query.where(Incident.category == filters.category)
    if filters.status is not None:
        query = query.where(Incident.status == filters.status)
    if filters.open_only:
        query = query.where(Incident.status != IncidentStatus.CLOSED)
    if filters.exercise is not None:
        query = query.where(Incident.exercise == filters.exercise)
    if filters.since is not None:
        query = query.where(Incident.reported_at >= filters.since)
    if filters.until is not None:
        query = query.where(Incident.reported_at < filters.until)
    if filters.person:
        people = select(User.id).where(
            User.username.icontains(filters.person, autoescape=True)
            | User.display_name.icontains(filters.person, autoescape=True)
        )
        query = query.where(Incident.created_by_id.in_(people))
    if filters.text:
        query = query.where(
            Incident.title.icontains(filters.text, autoescape=True)
            | Incident.location.icontains(filters.text, autoescape=True)
            | Incident.description.icontains(filters.text, autoescape=True)
        )
    return query


EXPORT_LIMIT = 10_000


def export_incidents(
    session: DbSession, filters: IncidentFilter, *, limit: int = EXPORT_LIMIT
) -> list[Incident]:
    """Return the incidents that pass the filters for an export, most recently reported first."""
    query = _filtered(session, filters).options(
        selectinload(Incident.affected_cities), selectinload(Incident.created_by)
    )
    return list(session.scalars(query.order_by(Incident.reported_at.desc(), Incident.id.desc()).limit(limit)))


def open_counts_by_level(session: DbSession, city: City | None = None) -> dict[int, int]:
    """Return how many open live incidents there are per level, for a city or the whole region.

    Exercise incidents never count in live figures: drills have their own lane.
    """
    query = select(Incident.level).where(
        Incident.status != IncidentStatus.CLOSED, Incident.exercise.is_(False)
    )
    if city is not None:
        query = query.where(_concerns(city))
    # Open incidents are few: counted here, the database reads them through the open index
    # (grouped there, SQLite would walk the level index over every incident of every year).
    counts = {int(level): 0 for level in IncidentLevel}
    for level in session.scalars(query):
        counts[int(level)] += 1
    return counts


def _concerns(city: City) -> ColumnElement[bool]:
    """Return the condition that an incident was reported by the city or affects it.

    A correlated EXISTS on the affected cities' key: the database keeps its way into incidents
    (the open ones, or the newest first) instead of gathering the city's every incident first.
    """
    affects = (
        select(incident_affected_cities.c.incident_id)
        .where(
            incident_affected_cities.c.incident_id == Incident.id,
            incident_affected_cities.c.city_id == city.id,
        )
        .exists()
    )
    return (Incident.reporting_city_id == city.id) | affects


def to_contract(incident: Incident) -> IncidentContract:
    """Return the incident as exchanged between cities."""
    return IncidentContract(
        id=incident.public_id,
        reporting_city=incident.reporting_city.slug,
        category=incident.category,
        level=IncidentLevel(incident.level),
        title=incident.title,
        description=incident.description,
        location=incident.location,
        latitude=incident.latitude,
        longitude=incident.longitude,
        occurred_at=incident.occurred_at,
        reported_at=incident.reported_at,
        affected_cities=tuple(c.slug for c in incident.affected_cities),
        status=incident.status,
        exercise=incident.exercise,
        source=incident.source,
        nature=incident.nature,
        **{name: getattr(incident, name) for name in SITUATION_FIELDS},
        reports=tuple(
            FollowUpContract(
                kind=r.kind,
                body=r.body,
                reported_at=r.reported_at,
                city=r.city.slug,
                location=r.location,
                latitude=r.latitude,
                longitude=r.longitude,
                **{name: getattr(r, name) for name in SITUATION_FIELDS},
            )
            for r in incident.reports
        ),
    )
