"""Tell cities about incidents: who must hear, idempotent delivery, and reading."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from contracts.common import IncidentLevel
from contracts.incidents import Notification as NotificationContract
from contracts.mqtt import DEFAULT_ROOT, JointAlert
from hub.duty import services as duty
from hub.fleet import services as fleet
from hub.incidents.models import Incident, IncidentUpdate, Notification
from hub.kernel import acknowledgements, audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, NotFound
from hub.kernel.types import DbSession, utcnow

INCIDENT_KIND = "incident"
NOTIFY_UPDATE = "notify-incident-update"


def recipients(incident: Incident) -> list[tuple[str, str]]:
    """Return (city slug, reason) for every city to tell: affected ones and their neighbours.

    The reporting city already knows, so it is left out.
    """
    chosen: dict[str, str] = {}
    for city in incident.affected_cities:
        chosen[city.slug] = "affected"
    for city in incident.affected_cities:
        for neighbour in city.neighbours:
            chosen.setdefault(neighbour.slug, "neighbour")
    chosen.pop(incident.reporting_city.slug, None)
    return sorted(chosen.items())


def deliver(
    session: DbSession,
    incident_id: int,
    city_slug: str,
    reason: str,
    *,
    flow_run_id: str | None,
    mqtt_root: str = DEFAULT_ROOT,
) -> tuple[Notification, bool]:
    """Store the notification for one city once, with joint alerts to its linkage systems.

    Return the notification and whether it is new.
    """
    city = cities.by_slug(session, city_slug)
    notification = Notification(
        incident_id=incident_id,
        city_id=city.id,
        kind=INCIDENT_KIND,
        reason=reason,
        created_at=utcnow(),
        flow_run_id=flow_run_id,
    )
    details = {"incident_id": incident_id, "city": city_slug, "reason": reason}
    return _store_once(session, notification, Actor.system("notify-neighbours"), details, mqtt_root)


def _store_once(
    session: DbSession, notification: Notification, actor: Actor, details: dict[str, object], mqtt_root: str
) -> tuple[Notification, bool]:
    """Store a notice unless its (incident, city, kind) is there already; alert and audit a new one."""
    query = select(Notification).where(
        Notification.incident_id == notification.incident_id,
        Notification.city_id == notification.city_id,
        Notification.kind == notification.kind,
    )
    existing = session.scalar(query)
    if existing is not None:
        return existing, False
    on_duty = duty.shift_of(session, notification.city_id, notification.created_at or utcnow())
    if on_duty is not None:
        notification.duty_officer, notification.duty_leader = on_duty.officer, on_duty.leader
        details = {**details, "duty_officer": on_duty.officer, "duty_leader": on_duty.leader}
    try:
        # A savepoint, so losing a race with a concurrent run keeps the caller's transaction.
        with session.begin_nested():
            session.add(notification)
    except IntegrityError:
        return session.scalars(query).one(), False
    _alert_linkage_systems(session, notification, mqtt_root)
    audit.record(
        session,
        actor,
        "notification.created",
        "notification",
        notification.id,
        city_id=notification.city_id,
        after=details,
    )
    return notification, True


def told(session: DbSession, incident_id: int) -> list[Notification]:
    """Return the first notice of an incident to each city told about it, in city order."""
    query = select(Notification).where(
        Notification.incident_id == incident_id, Notification.kind == INCIDENT_KIND
    )
    return list(session.scalars(query.order_by(Notification.city_id)))


def record_update(
    session: DbSession, incident: Incident, changes: dict[str, object]
) -> IncidentUpdate | None:
    """Record a change for the cities already told, and ask for the flow that tells them.

    Their first notices now give the reason as it stands (a city added later reads 本市受影响).
    A city newly concerned is not among them: the incident's own notification reaches it.
    Return None when no city was told yet.
    """
    first = told(session, incident.id)
    if not first:
        return None
    affected = {city.id for city in incident.affected_cities}
    for notice in first:
        notice.reason = "affected" if notice.city_id in affected else "neighbour"
    update = IncidentUpdate(
        incident_id=incident.id,
        changes=changes,
        recipients=[n.city.slug for n in first],
        created_at=utcnow(),
    )
    session.add(update)
    session.flush()
    flow_requests.enqueue(
        session, NOTIFY_UPDATE, key=f"{NOTIFY_UPDATE}:{update.id}", parameters={"update_id": update.id}
    )
    return update


def update_recipients(session: DbSession, update_id: int) -> list[str]:
    """Return the cities an update must reach."""
    update = session.get(IncidentUpdate, update_id)
    if update is None:
        raise NotFound(f"no incident update {update_id}")
    return list(update.recipients)


def deliver_update(
    session: DbSession,
    update_id: int,
    city_slug: str,
    *,
    flow_run_id: str | None,
    mqtt_root: str = DEFAULT_ROOT,
) -> tuple[Notification, bool]:
    """Store the notice of an update for one city once; return it and whether it is new."""
    update = session.get(IncidentUpdate, update_id)
    if update is None:
        raise NotFound(f"no incident update {update_id}")
    city = cities.by_slug(session, city_slug)
    affected = any(c.id == city.id for c in update.incident.affected_cities)
    notification = Notification(
        incident_id=update.incident_id,
        city_id=city.id,
        kind=f"update:{update.id}",
        reason="affected" if affected else "neighbour",
        created_at=utcnow(),
        flow_run_id=flow_run_id,
        update_id=update.id,
    )
    details = {"incident_id": update.incident_id, "city": city_slug, "update": update.changes}
    return _store_once(session, notification, Actor.system(NOTIFY_UPDATE), details, mqtt_root)


def _alert_linkage_systems(session: DbSession, notification: Notification, root: str) -> None:
    """Queue a joint alert to every linkage system of the notified city, in the same transaction."""
    incident = notification.incident
    systems = fleet.linkage_systems_in(session, [notification.city_id])
    for system in systems:
        alert = JointAlert(
            id=notification.public_id,
            incident_id=incident.public_id,
            level=IncidentLevel(incident.level),
            title=incident.title,
            reporting_city=incident.reporting_city.slug,
            exercise=incident.exercise,
            issued_at=notification.created_at,
        )
        fleet.queue_joint_alert(session, system, alert, root=root)


def for_city(
    session: DbSession, city_id: int, *, limit: int = 50, unread_only: bool = False
) -> list[Notification]:
    """Return a city's notifications, newest first."""
    query = select(Notification).where(Notification.city_id == city_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: DbSession, city_id: int) -> int:
    """Return how many notifications the city has not yet read."""
    query = select(func.count()).where(Notification.city_id == city_id, Notification.read_at.is_(None))
    return session.scalar(query) or 0


def notice_key(notification_id: int) -> str:
    """Name a notice on the desk (`DeskItem.key`)."""
    return f"incidents:notice:{notification_id}"


def mark_read(session: DbSession, actor: Actor, notification_id: int) -> Notification:
    """Mark a notification of the actor's own city as read."""
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    if notification.city_id != actor.city_id or not actor.can_write_incidents:
        raise Forbidden("only your own city's coordinators and duty officers acknowledge notifications")
    if notification.read_at is None:
        notification.read_at = utcnow()
        notification.read_by_id = actor.user_id
        audit.record(session, actor, "notification.read", "notification", notification.id)
        # Reading a notice is its acknowledgement on the desk: say who read it, and when.
        acknowledgements.acknowledge(session, actor, notice_key(notification.id))
    return notification


def to_contract(notification: Notification) -> NotificationContract:
    """Return the notification as it crosses the boundary."""
    incident = notification.incident
    return NotificationContract(
        id=notification.public_id,
        incident_id=incident.public_id,
        recipient_city=notification.city.slug,
        reason=notification.reason,
        level=IncidentLevel(incident.level),
        title=incident.title,
        reporting_city=incident.reporting_city.slug,
        created_at=notification.created_at,
        exercise=incident.exercise,
    )


def id_for_public_id(session: DbSession, public_id: object) -> int:
    """Return the hub's id of a notification known by its exchange id, or fail."""
    notification_id = session.scalar(select(Notification.id).where(Notification.public_id == public_id))
    if notification_id is None:
        raise NotFound(f"no notification {public_id}")
    return notification_id
