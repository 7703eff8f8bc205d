"""Bulletins and warnings: issue with an outbox of deliveries, record receipts, remind and flag."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, selectinload

from contracts.bulletins import BulletinCreate, ReceiptCreate
from contracts.cap import COLOUR_TO_LEVEL, CapAlert, CapMsgType, CapScope, CapStatus, warning_fields_from_cap
from contracts.common import WarningColour
from contracts.errors import decode_data
from contracts.mqtt import DEFAULT_ROOT, JointAlert, NoticeAction
from hub.bulletins.models import Bulletin, BulletinCapMessage, BulletinRecipient
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.incidents import services as incidents
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, Reminder, User
from hub.kernel.types import DbSession, utcnow

if TYPE_CHECKING:
    from hub.config import Settings

DISTRIBUTE = "distribute-bulletin"
CANCEL = "deliver-bulletin-cancellation"
CHASE = "chase-receipts"
# The scheduler asks again for an undelivered bulletin after redeliver_seconds, doubling the wait
# each round up to MAX_BACKOFF, and gives up after MAX_REDELIVERIES rounds: the issuer then sees
# the city as not reached (未送达) with the last error, and may ask for another round at once.
MAX_REDELIVERIES = 8
MAX_BACKOFF = timedelta(hours=1)
# After the deadline a late city is reminded at once, and flagged on the issuer's desk after this.
FLAG_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class CapIdentity:
    """What makes a CAP message the same message: its sender, identifier and sent (CAP 1.2, 3.2.1)."""

    sender: str
    identifier: str
    sent: datetime


def by_cap_identity(session: DbSession, identity: CapIdentity) -> Bulletin | None:
    """Return the bulletin issued from the CAP message with this identity, if any."""
    return session.scalar(
        select(Bulletin).where(
            Bulletin.cap_sender == identity.sender,
            Bulletin.cap_identifier == identity.identifier,
            Bulletin.cap_sent == identity.sent.astimezone(UTC),
        )
    )


def by_cap_reference(session: DbSession, identity: CapIdentity) -> Bulletin | None:
    """Return the bulletin a CAP message names: one issued from it, or one it updated or cancelled."""
    found = by_cap_identity(session, identity)
    if found is not None:
        return found
    return session.scalar(
        select(Bulletin)
        .join(BulletinCapMessage, BulletinCapMessage.bulletin_id == Bulletin.id)
        .where(
            BulletinCapMessage.cap_sender == identity.sender,
            BulletinCapMessage.cap_identifier == identity.identifier,
            BulletinCapMessage.cap_sent == identity.sent.astimezone(UTC),
        )
        .limit(1)
    )


def cities_addressed(session: DbSession, addressees: tuple[str, ...]) -> tuple[list[City], list[str]]:
    """Map CAP `<addresses>` entries to member cities: an entry is a city's slug ("xuzhou") or its
    GB/T 2260 division code ("320300"). Return the cities named and the entries that name none."""
    known: dict[str, City] = {}
    for city in session.scalars(select(City)):
        known[city.slug] = city
        known[city.division_code] = city
    named = {known[a].id: known[a] for a in addressees if a in known}
    return list(named.values()), [a for a in addressees if a not in known]


def _snapshot(bulletin: Bulletin) -> dict[str, object]:
    return {
        "kind": bulletin.kind,
        "colour": bulletin.colour,
        "category": bulletin.category,
        "area": bulletin.area,
        "title": bulletin.title,
        "scope": bulletin.scope,
        "receipt_deadline": bulletin.receipt_deadline.isoformat(),
        "exercise": bulletin.exercise,
        "addressed": [r.city.slug for r in bulletin.recipients],
    }


def issue(
    session: DbSession,
    actor: Actor,
    data: BulletinCreate,
    *,
    source: str = "hub",
    mqtt_root: str = DEFAULT_ROOT,
    cap_identity: CapIdentity | None = None,
    cap_addresses: str | None = None,
    incident_id: int | None = None,
) -> Bulletin:
    """Issue a bulletin for the actor's city; its deliveries (HTTP to the cities' platforms, MQTT
    to their linkage systems for a warning) are queued in the same transaction.

    A bulletin made from a CAP alert keeps the alert's identity, and the same alert again is a
    conflict that names the first bulletin: a partner retrying after a timeout must not double a
    warning region-wide."""
    if not actor.can_write_incidents or actor.city_id is None:
        raise Forbidden("only coordinators and duty officers of a city issue bulletins")
    if incident_id is not None and not incidents.exists(session, incident_id):
        raise NotFound(f"no incident {incident_id}")
    issuer = session.get(City, actor.city_id)
    if issuer is None:
        raise NotFound(f"no city {actor.city_id}")
    if cap_identity is not None:
        first = by_cap_identity(session, cap_identity)
        if first is not None:
            raise Conflict(
                f"this CAP alert (sender {cap_identity.sender}, identifier {cap_identity.identifier}, "
                f"sent {cap_identity.sent.isoformat()}) was already issued as warning {first.public_id}"
            )
    now = utcnow()
    if data.receipt_deadline <= now:
        raise InvalidInput("the receipt deadline must be in the future", reason="deadline_past")
    if data.expires_at is not None and data.expires_at <= now:
        # An expired warning sent out as live would alarm systems and vehicles for nothing.
        raise InvalidInput(
            f"the {data.kind} expired at {data.expires_at.isoformat()}; an expired one is not distributed"
        )
    addressed = {c.slug: c for c in cities.by_slugs(session, list(data.addressed_cities))}
    if data.all_neighbours:
        addressed.update({c.slug: c for c in issuer.neighbours})
    addressed.pop(issuer.slug, None)
    if not addressed:
        raise InvalidInput("a bulletin must reach at least one other city", reason="no_other_city")
    bulletin = Bulletin(
        public_id=uuid.uuid4(),
        kind=data.kind,
        issuing_city=issuer,
        colour=data.colour.value if data.colour else None,
        category=data.category.value,
        area=data.area,
        title=data.title,
        text=data.text,
        scope=data.scope,
        receipt_deadline=data.receipt_deadline,
        issued_at=now,
        expires_at=data.expires_at,
        exercise=data.exercise,
        exercise_ref=data.exercise_ref,
        issued_by_id=actor.user_id,
        source=source,
        cap_sender=cap_identity.sender if cap_identity else None,
        cap_identifier=cap_identity.identifier if cap_identity else None,
        cap_sent=cap_identity.sent if cap_identity else None,
        cap_addresses=cap_addresses,
        incident_id=incident_id,
    )
    if cap_identity is None:
        session.add(bulletin)
    else:
        try:
            with session.begin_nested():
                session.add(bulletin)
        except IntegrityError as exc:
            # The same alert posted twice at the same moment: the constraint decides.
            raise Conflict(f"this CAP alert ({cap_identity.identifier}) is being issued already") from exc
    for city in sorted(addressed.values(), key=lambda c: c.id):
        session.add(BulletinRecipient(bulletin=bulletin, city=city, delivery_attempts=0))
    session.flush()
    audit.record(session, actor, "bulletin.issued", "bulletin", bulletin.id, after=_snapshot(bulletin))
    alert_linkage_systems(session, bulletin, root=mqtt_root)
    flow_requests.enqueue(
        session, DISTRIBUTE, key=f"{DISTRIBUTE}:{bulletin.public_id}", parameters={"bulletin_id": bulletin.id}
    )
    return bulletin


def visible_to(bulletin: Bulletin, city_id: int | None) -> bool:
    """Return whether a city may see a bulletin: restricted ones only the issuer and addressees."""
    if bulletin.scope == "public":
        return True
    return city_id == bulletin.issuing_city_id or any(r.city_id == city_id for r in bulletin.recipients)


def for_incident(session: DbSession, actor: Actor, incident_id: int) -> list[Bulletin]:
    """Return the bulletins about an incident that the actor may see (admins all), oldest first."""
    query = (
        select(Bulletin)
        .where(Bulletin.incident_id == incident_id)
        .options(selectinload(Bulletin.recipients))
        .order_by(Bulletin.issued_at, Bulletin.id)
    )
    return [b for b in session.scalars(query) if actor.is_admin or visible_to(b, actor.city_id)]


def get_for(session: DbSession, actor: Actor, public_id: uuid.UUID) -> Bulletin:
    """Return a bulletin the actor may see; a restricted one is 'not found' to everyone else."""
    bulletin = session.scalar(
        select(Bulletin).where(Bulletin.public_id == public_id).options(selectinload(Bulletin.recipients))
    )
    if bulletin is None or not visible_to(bulletin, actor.city_id):
        raise NotFound(f"no bulletin {public_id}")
    return bulletin


def get_by_id(session: DbSession, bulletin_id: int) -> Bulletin:
    """Return a bulletin by the hub's id (for flows), or fail."""
    bulletin = session.get(Bulletin, bulletin_id)
    if bulletin is None:
        raise NotFound(f"no bulletin {bulletin_id}")
    return bulletin


def inbox(session: DbSession, city_id: int, limit: int = 30) -> list[Bulletin]:
    """Return bulletins addressed to a city: those nobody of the city has signed first, however
    old, then the newest; older ones are for the search."""
    query = (
        select(Bulletin)
        .join(BulletinRecipient, BulletinRecipient.bulletin_id == Bulletin.id)
        .where(BulletinRecipient.city_id == city_id)
        .order_by(BulletinRecipient.receipt_at.is_not(None), Bulletin.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query.options(selectinload(Bulletin.recipients))))


def outbox(session: DbSession, city_id: int, limit: int = 30) -> list[Bulletin]:
    """Return bulletins a city issued, newest first, with their receipt matrix."""
    query = (
        select(Bulletin).where(Bulletin.issuing_city_id == city_id).order_by(Bulletin.id.desc()).limit(limit)
    )
    return list(session.scalars(query.options(selectinload(Bulletin.recipients))))


def visible_list(
    session: DbSession,
    city_id: int | None,
    *,
    current_only: bool = False,
    live_only: bool = False,
    limit: int = 200,
) -> list[Bulletin]:
    """Return every bulletin a city may see (public ones and its restricted ones), newest first;
    with `live_only`, none of a drill's (the live CAP feed carries no exercise traffic)."""
    addressed = select(BulletinRecipient.bulletin_id).where(BulletinRecipient.city_id == city_id)
    query = select(Bulletin).where(
        or_(Bulletin.scope == "public", Bulletin.issuing_city_id == city_id, Bulletin.id.in_(addressed))
    )
    if live_only:
        query = query.where(Bulletin.exercise.is_(False))
    if current_only:
        now = utcnow()
        query = query.where(Bulletin.cancelled_at.is_(None)).where(
            or_(Bulletin.expires_at.is_(None), Bulletin.expires_at > now)
        )
    query = query.options(selectinload(Bulletin.recipients))  # the lists show who it went to
    return list(session.scalars(query.order_by(Bulletin.id.desc()).limit(limit)))


@dataclass(frozen=True)
class BulletinFilter:
    """Filters for searching the bulletins a city may see; None means any."""

    box: Literal["inbox", "outbox"] | None = None  # addressed to the city, or issued by it
    kind: Literal["bulletin", "warning"] | None = None
    city: str | None = None  # issuing or addressed
    person: str | None = None  # part of the issuing person's user or display name
    since: datetime | None = None  # issued at or after
    until: datetime | None = None  # issued before
    text: str | None = None  # part of the title, area or text


@dataclass(frozen=True)
class BulletinPage:
    """One page of a bulletin search."""

    items: list[Bulletin]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _searched(session: DbSession, city_id: int | None, filters: BulletinFilter) -> Select[Bulletin]:
    """Return the query of the bulletins a city may see that pass the filters."""
    addressed = select(BulletinRecipient.bulletin_id).where(BulletinRecipient.city_id == city_id)
    if filters.box == "inbox":
        query = select(Bulletin).where(Bulletin.id.in_(addressed))
    elif filters.box == "outbox":
        query = select(Bulletin).where(Bulletin.issuing_city_id == city_id)
    else:
        query = select(Bulletin).where(
            or_(Bulletin.scope == "public", Bulletin.issuing_city_id == city_id, Bulletin.id.in_(addressed))
        )
    if filters.kind is not None:
        query = query.where(Bulletin.kind == filters.kind)
    if filters.city is not None:
        other = cities.by_slug(session, filters.city)
        to_other = select(BulletinRecipient.bulletin_id).where(BulletinRecipient.city_id == other.id)
        query = query.where(or_(Bulletin.issuing_city_id == other.id, Bulletin.id.in_(to_other)))
    if filters.person:
        people = select(User.id).where(
            User.username.icontains(filters.person, autoescape=True)
            | User.display_name.icontains(filters.person, autoescape=True)
        )
        query = query.where(Bulletin.issued_by_id.in_(people))
    if filters.since is not None:
        query = query.where(Bulletin.issued_at >= filters.since)
    if filters.until is not None:
        query = query.where(Bulletin.issued_at < filters.until)
    if filters.text:
        query = query.where(
            Bulletin.title.icontains(filters.text, autoescape=True)
            | Bulletin.area.icontains(filters.text, autoescape=True)
            | Bulletin.text.icontains(filters.text, autoescape=True)
        )
    return query


MAX_PER_PAGE = 100
EXPORT_LIMIT = 10_000


def search(
    session: DbSession, city_id: int | None, filters: BulletinFilter, *, page: int = 1, per_page: int = 20
) -> BulletinPage:
    """Return a page of the bulletins a city may see that pass the filters, newest first."""
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput(f"page must be >= 1 and per_page between 1 and {MAX_PER_PAGE}")
    query = _searched(session, city_id, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.options(selectinload(Bulletin.recipients))
        .order_by(Bulletin.issued_at.desc(), Bulletin.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return BulletinPage(list(items), total, page, per_page)


def export(
    session: DbSession, city_id: int | None, filters: BulletinFilter, *, limit: int = EXPORT_LIMIT
) -> list[Bulletin]:
    """Return the bulletins a city may see that pass the filters, for an export, newest first."""
    query = _searched(session, city_id, filters).options(
        selectinload(Bulletin.recipients), selectinload(Bulletin.issued_by)
    )
    return list(session.scalars(query.order_by(Bulletin.issued_at.desc(), Bulletin.id.desc()).limit(limit)))


def undelivered(session: DbSession, bulletin_id: int) -> list[BulletinRecipient]:
    """Return the recipients of a live bulletin whose platform has not accepted it and that the
    hub has not given up on."""
    query = (
        select(BulletinRecipient)
        .join(Bulletin)
        .where(
            BulletinRecipient.bulletin_id == bulletin_id,
            BulletinRecipient.delivered_at.is_(None),
            BulletinRecipient.given_up_at.is_(None),
            Bulletin.cancelled_at.is_(None),
        )
    )
    return list(session.scalars(query))


def not_delivered(bulletin: Bulletin) -> list[BulletinRecipient]:
    """Return the recipients the hub gave up on (未送达): the cap was reached or refused for good."""
    return [r for r in bulletin.recipients if r.delivered_at is None and r.given_up_at is not None]


def record_delivery(session: DbSession, recipient_id: int, *, platform_ref: str | None) -> BulletinRecipient:
    """Record that a city's platform accepted the bulletin (平台已接收).

    A platform's answer is never a person's signature, even when it carries a receipt: the
    bulletin stays on the city's desk until a person signs it (`record_receipt`).
    """
    recipient = session.get(BulletinRecipient, recipient_id)
    if recipient is None:
        raise NotFound(f"no bulletin recipient {recipient_id}")
    recipient.delivery_attempts += 1
    if recipient.delivered_at is None:
        recipient.delivered_at = utcnow()
        recipient.platform_ref = platform_ref
        recipient.last_error = None
    return recipient


def record_delivery_failure(
    session: DbSession, recipient_id: int, error: str, *, permanent: bool = False
) -> None:
    """Count a failed delivery attempt; the recipient stays in the outbox unless the failure is
    permanent (asking again cannot help), when the hub stops asking."""
    recipient = session.get(BulletinRecipient, recipient_id)
    if recipient is not None:
        recipient.delivery_attempts += 1
        recipient.last_error = error[:2000]
        if permanent and recipient.given_up_at is None:
            recipient.given_up_at = utcnow()


def record_receipt(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: ReceiptCreate
) -> tuple[BulletinRecipient, bool]:
    """Record a person's signature (签收) for the actor's city once; return it and whether it is new.

    A person signs on the hub (a user) or on the city's own platform, which passes the signature
    on with the person's name (a partner token); either settles the item on the city's desk.
    """
    if not actor.can_write_incidents:
        raise Forbidden("only coordinators and duty officers acknowledge bulletins")
    bulletin = get_for(session, actor, public_id)
    recipient = next((r for r in bulletin.recipients if r.city_id == actor.city_id), None)
    if recipient is None:
        raise Forbidden("your city is not an addressee of this bulletin")
    if recipient.receipt_at is not None:
        return recipient, False
    at = data.received_at or utcnow()
    via: Literal["hub", "platform"] = "platform" if actor.kind == "partner" else "hub"
    recipient.receipt_at = at
    recipient.acknowledged_by = data.acknowledged_by
    recipient.signed_via = via
    audit.record(
        session,
        actor,
        "bulletin.receipt",
        "bulletin",
        recipient.bulletin_id,
        city_id=recipient.city_id,
        after={
            "city": recipient.city.slug,
            "received_at": at.isoformat(),
            "acknowledged_by": data.acknowledged_by,
            "signed_via": via,
        },
    )
    return recipient, True


def is_late(recipient: BulletinRecipient, now: datetime) -> bool:
    """Tell whether the city's signature is overdue: no person signed by the deadline."""
    bulletin = recipient.bulletin
    return recipient.receipt_at is None and bulletin.cancelled_at is None and bulletin.receipt_deadline <= now


def chase_late_receipts(session: DbSession, *, flag_after: timedelta = FLAG_AFTER) -> dict[str, int]:
    """Remind cities whose receipt is past its deadline, and flag those still silent later."""
    now = utcnow()
    late = session.scalars(
        select(BulletinRecipient)
        .join(Bulletin)
        .where(
            BulletinRecipient.receipt_at.is_(None),
            Bulletin.receipt_deadline <= now,
            Bulletin.cancelled_at.is_(None),
            BulletinRecipient.flagged_at.is_(None),
        )
    ).all()
    counts = {"reminded": 0, "flagged": 0}
    for recipient in late:
        deadline = recipient.bulletin.receipt_deadline
        if recipient.reminded_at is None:
            recipient.reminded_at = now
            session.add(
                Reminder(
                    kind="receipt",
                    subject_id=recipient.id,
                    city_id=recipient.city_id,
                    stage="reminded",
                    created_at=now,
                    details={"bulletin": str(recipient.bulletin.public_id)},
                )
            )
            counts["reminded"] += 1
        elif now >= deadline + flag_after:
            recipient.flagged_at = now
            session.add(
                Reminder(
                    kind="receipt",
                    subject_id=recipient.id,
                    city_id=recipient.city_id,
                    stage="flagged",
                    created_at=now,
                    details={"bulletin": str(recipient.bulletin.public_id)},
                )
            )
            counts["flagged"] += 1
    return counts


def owed_receipts(session: DbSession, city_id: int) -> list[BulletinRecipient]:
    """Return the receipts a city still owes, soonest deadline first."""
    query = (
        select(BulletinRecipient)
        .join(Bulletin)
        .where(
            BulletinRecipient.city_id == city_id,
            BulletinRecipient.receipt_at.is_(None),
            Bulletin.cancelled_at.is_(None),
        )
        .options(contains_eager(BulletinRecipient.bulletin))  # the desk reads each one's bulletin
        .order_by(Bulletin.receipt_deadline)
    )
    return list(session.scalars(query))


def flagged_for_issuer(session: DbSession, city_id: int) -> list[BulletinRecipient]:
    """Return addressees flagged for a missing receipt on bulletins the city issued."""
    query = (
        select(BulletinRecipient)
        .join(Bulletin)
        .where(
            Bulletin.issuing_city_id == city_id,
            BulletinRecipient.flagged_at.is_not(None),
            BulletinRecipient.receipt_at.is_(None),
        )
        .options(contains_eager(BulletinRecipient.bulletin))  # the desk reads each one's bulletin
        .order_by(Bulletin.receipt_deadline)
    )
    return list(session.scalars(query))


def due_for_redelivery(session: DbSession, now: datetime) -> list[BulletinRecipient]:
    """Return the recipients of live bulletins not yet reached, not given up, whose wait is over."""
    query = (
        select(BulletinRecipient)
        .join(Bulletin)
        .where(
            BulletinRecipient.delivered_at.is_(None),
            BulletinRecipient.given_up_at.is_(None),
            or_(BulletinRecipient.next_attempt_at.is_(None), BulletinRecipient.next_attempt_at <= now),
            Bulletin.cancelled_at.is_(None),
        )
        .order_by(BulletinRecipient.id)
    )
    return list(session.scalars(query))


def backoff(redeliveries: int, base_seconds: int) -> timedelta:
    """Return how long to wait after the given number of redelivery rounds: doubling, capped."""
    return min(timedelta(seconds=base_seconds * 2 ** min(redeliveries, 20)), MAX_BACKOFF)


FORWARD = "forward-receipts"


def receipts_to_forward(session: DbSession, bulletin_id: int) -> list[BulletinRecipient]:
    """Return a bulletin's receipts not yet passed on to the issuing city's platform."""
    query = select(BulletinRecipient).where(
        BulletinRecipient.bulletin_id == bulletin_id,
        BulletinRecipient.receipt_at.is_not(None),
        BulletinRecipient.receipt_forwarded_at.is_(None),
    )
    return list(session.scalars(query))


def bulletins_with_receipts_to_forward(session: DbSession) -> list[tuple[int, uuid.UUID]]:
    """Return (id, public id) of bulletins holding receipts the issuer's platform has not had."""
    query = (
        select(Bulletin.id, Bulletin.public_id)
        .join(BulletinRecipient)
        .where(BulletinRecipient.receipt_at.is_not(None), BulletinRecipient.receipt_forwarded_at.is_(None))
        .distinct()
    )
    return [(row[0], row[1]) for row in session.execute(query)]


def mark_forwarded(session: DbSession, recipient_id: int) -> None:
    """Record that the issuing platform has the receipt."""
    recipient = session.get(BulletinRecipient, recipient_id)
    if recipient is not None and recipient.receipt_forwarded_at is None:
        recipient.receipt_forwarded_at = utcnow()


def alert_linkage_systems(
    session: DbSession, bulletin: Bulletin, *, root: str, revision: str | None = None
) -> int:
    """Queue a joint alert about a warning to the linkage systems of its addressed cities, and a
    notice command to their mobile command vehicles (tracked like any other command).

    An update of the warning passes a `revision`, which gives its joint alerts ids of their own."""
    if bulletin.kind != "warning" or bulletin.colour is None:
        return 0
    colour = WarningColour(bulletin.colour)
    city_ids = [r.city_id for r in bulletin.recipients]
    valid_until = min(bulletin.expires_at or bulletin.receipt_deadline, bulletin.issued_at + commands.MAX_TTL)
    ttl = max(valid_until - bulletin.issued_at, commands.MIN_TTL)
    notice = NoticeAction(title=bulletin.title, text=bulletin.text[:500], colour=colour)
    # A drill's warning reaches the crews under the exercise root, like its joint alerts.
    for vehicle_id in fleet.vehicle_ids_in(session, city_ids):
        actor = Actor.system("warning")
        commands.send_command(
            session, actor, vehicle_id, notice, root=root, ttl=ttl, exercise=bulletin.exercise
        )
    systems = fleet.linkage_systems_in(session, city_ids)
    count = 0
    for system in systems:
        alert = JointAlert(
            id=uuid.uuid5(
                bulletin.public_id,
                system.mqtt_username if revision is None else f"{system.mqtt_username}/{revision}",
            ),
            bulletin_id=bulletin.public_id,
            colour=colour,
            level=COLOUR_TO_LEVEL[colour],
            title=bulletin.title,
            reporting_city=bulletin.issuing_city.slug,
            exercise=bulletin.exercise,
            issued_at=bulletin.issued_at,
        )
        fleet.queue_joint_alert(session, system, alert, root=root)
        count += 1
    return count


def schedule_deliveries(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask again for bulletins some city has not had yet, and for receipts not yet forwarded."""
    slot = int(now.timestamp()) // settings.redeliver_seconds
    due: dict[int, uuid.UUID] = {}
    for recipient in due_for_redelivery(session, now):
        if recipient.next_attempt_at is None:
            # The first round is the issue's own; the wait starts from here.
            recipient.next_attempt_at = now + backoff(0, settings.redeliver_seconds)
            continue
        if recipient.redeliveries >= MAX_REDELIVERIES:
            recipient.given_up_at = now
            continue
        recipient.redeliveries += 1
        recipient.next_attempt_at = now + backoff(recipient.redeliveries, settings.redeliver_seconds)
        due[recipient.bulletin_id] = recipient.bulletin.public_id
    for bulletin_id, public_id in due.items():
        flow_requests.enqueue(
            session,
            DISTRIBUTE,
            key=f"{DISTRIBUTE}:{public_id}:retry-{slot}",
            parameters={"bulletin_id": bulletin_id},
        )
    for bulletin_id, public_id in with_cancellations_to_deliver(session):
        flow_requests.enqueue(
            session, CANCEL, key=f"{CANCEL}:{public_id}:{slot}", parameters={"bulletin_id": bulletin_id}
        )
    # One run a slot for every receipt still to pass on: an issuing platform down for hours would
    # otherwise cost a run per bulletin per slot.
    to_forward = sorted(bulletin_id for bulletin_id, _ in bulletins_with_receipts_to_forward(session))
    if to_forward:
        flow_requests.enqueue(
            session, FORWARD, key=f"{FORWARD}:{slot}", parameters={"bulletin_ids": to_forward}
        )


def has_receipts_to_chase(session: DbSession, now: datetime, *, flag_after: timedelta = FLAG_AFTER) -> bool:
    """Tell whether some late receipt is due a reminder or a flag at `now`."""
    due = (
        select(BulletinRecipient.id)
        .join(Bulletin)
        .where(
            BulletinRecipient.receipt_at.is_(None),
            Bulletin.receipt_deadline <= now,
            Bulletin.cancelled_at.is_(None),
            BulletinRecipient.flagged_at.is_(None),
            or_(BulletinRecipient.reminded_at.is_(None), Bulletin.receipt_deadline <= now - flag_after),
        )
    )
    return session.scalar(due.limit(1)) is not None


def schedule_chase(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for the round that reminds and flags cities late with their receipts, when one is due.

    A slot with nothing to chase asks for nothing, so it leaves no flow run behind.
    """
    if has_receipts_to_chase(session, now):
        slot = int(now.timestamp()) // settings.chase_seconds
        flow_requests.enqueue(session, CHASE, key=f"{CHASE}:{slot}", parameters={})


def _issued_by_actor(session: DbSession, actor: Actor, public_id: uuid.UUID) -> Bulletin:
    if not actor.can_write_incidents:
        raise Forbidden("only coordinators and duty officers of the issuing city act on a bulletin")
    bulletin = get_for(session, actor, public_id)
    if bulletin.issuing_city_id != actor.city_id:
        raise Forbidden("only the issuing city acts on its bulletin")
    return bulletin


def retry_now(session: DbSession, actor: Actor, public_id: uuid.UUID) -> Bulletin:
    """Ask at once for another round to the cities not reached, starting their back-off afresh."""
    bulletin = _issued_by_actor(session, actor, public_id)
    if bulletin.cancelled_at is not None:
        raise Conflict("the bulletin is cancelled", reason="bulletin_cancelled")
    pending = [r for r in bulletin.recipients if r.delivered_at is None]
    if not pending:
        raise Conflict("every addressed city has the bulletin", reason="all_received")
    for recipient in pending:
        recipient.given_up_at = None
        recipient.redeliveries = 0
        recipient.next_attempt_at = None
    session.flush()
    audit.record(
        session,
        actor,
        "bulletin.redelivery_requested",
        "bulletin",
        bulletin.id,
        after={"cities": [r.city.slug for r in pending]},
    )
    flow_requests.enqueue(
        session,
        DISTRIBUTE,
        key=f"{DISTRIBUTE}:{bulletin.public_id}:now-{uuid.uuid4()}",
        parameters={"bulletin_id": bulletin.id},
    )
    return bulletin


def cancel(session: DbSession, actor: Actor, public_id: uuid.UUID) -> tuple[Bulletin, bool]:
    """Cancel a bulletin of the actor's city once; return it and whether this call cancelled it.

    Deliveries stop, and the platforms that already took it are told (in the same transaction
    the flow request is queued)."""
    bulletin = _issued_by_actor(session, actor, public_id)
    if bulletin.cancelled_at is not None:
        return bulletin, False
    bulletin.cancelled_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "bulletin.cancelled",
        "bulletin",
        bulletin.id,
        after={"cancelled_at": bulletin.cancelled_at.isoformat()},
    )
    flow_requests.enqueue(
        session, CANCEL, key=f"{CANCEL}:{bulletin.public_id}", parameters={"bulletin_id": bulletin.id}
    )
    return bulletin, True


def cancellations_to_deliver(session: DbSession, bulletin_id: int) -> list[BulletinRecipient]:
    """Return the recipients of a cancelled bulletin whose platform took it but not its cancellation."""
    query = (
        select(BulletinRecipient)
        .join(Bulletin)
        .where(
            BulletinRecipient.bulletin_id == bulletin_id,
            Bulletin.cancelled_at.is_not(None),
            BulletinRecipient.platform_ref.is_not(None),
            BulletinRecipient.cancel_delivered_at.is_(None),
        )
    )
    return list(session.scalars(query))


def with_cancellations_to_deliver(session: DbSession) -> list[tuple[int, uuid.UUID]]:
    """Return (id, public id) of cancelled bulletins some platform has not heard the cancellation of."""
    query = (
        select(Bulletin.id, Bulletin.public_id)
        .join(BulletinRecipient)
        .where(
            Bulletin.cancelled_at.is_not(None),
            BulletinRecipient.platform_ref.is_not(None),
            BulletinRecipient.cancel_delivered_at.is_(None),
        )
        .distinct()
    )
    return [(row[0], row[1]) for row in session.execute(query)]


def mark_cancel_delivered(session: DbSession, recipient_id: int) -> None:
    """Record that a city's platform accepted the cancellation."""
    recipient = session.get(BulletinRecipient, recipient_id)
    if recipient is not None and recipient.cancel_delivered_at is None:
        recipient.cancel_delivered_at = utcnow()


def _addressed_by_cap(session: DbSession, alert: CapAlert, fields: dict[str, object]) -> tuple[str, ...]:
    """Return the slugs of the member cities a CAP alert is for.

    A Private alert reaches only the cities its `<addresses>` name; so does a Restricted one that
    has `<addresses>` (without them, the cities of its `huaihai-city` geocodes). A Public alert
    reaches the cities of its geocodes."""
    if alert.scope is CapScope.PUBLIC or (alert.scope is CapScope.RESTRICTED and not alert.addresses):
        return tuple(fields["addressed_cities"])  # type: ignore[arg-type]
    named, _ = cities_addressed(session, alert.addressees())
    return tuple(c.slug for c in named)


def receive_cap(
    session: DbSession,
    actor: Actor,
    alert: CapAlert,
    *,
    receipt_deadline: datetime,
    mqtt_root: str = DEFAULT_ROOT,
) -> tuple[Bulletin, bool]:
    """Act on a CAP alert a partner system posted for the actor's city; return the bulletin and
    whether it is new.

    An Alert becomes a warning of the actor's city. An Update or Cancel whose `<references>` name
    warnings the hub holds updates or cancels them (only the city that issued them may)."""
    if alert.msg_type in (CapMsgType.UPDATE, CapMsgType.CANCEL):
        return _apply_cap_change(
            session, actor, alert, mqtt_root=mqtt_root, receipt_deadline=receipt_deadline
        ), False
    fields = warning_fields_from_cap(alert)
    own = session.get(City, actor.city_id) if actor.city_id else None
    # The alert may name the receiving city itself; the warning goes to the others. A public one
    # that names no other member city goes to all the neighbours; a restricted or private one
    # reaches only whom it names, so it must name someone.
    others = tuple(c for c in _addressed_by_cap(session, alert, fields) if own is None or c != own.slug)
    if not others and alert.scope is not CapScope.PUBLIC:
        where = "<addresses>" if alert.addresses else "<geocode> huaihai-city"
        raise InvalidInput(
            f"a {alert.scope} CAP alert reaches only the member cities it names, and its {where} "
            "names no other member city (name a city by its slug, such as xuzhou, or its GB/T 2260 "
            "division code, such as 320300)",
            details={"addresses": list(alert.addressees())},
        )
    fields["addressed_cities"], fields["all_neighbours"] = others, not others
    fields["receipt_deadline"] = receipt_deadline
    data = decode_data(BulletinCreate, fields)
    bulletin = issue(
        session,
        actor,
        data,
        source="cap",
        mqtt_root=mqtt_root,
        cap_identity=CapIdentity(alert.sender, alert.identifier, alert.sent),
        cap_addresses=alert.addresses,
    )
    return bulletin, True


def _apply_cap_change(
    session: DbSession, actor: Actor, alert: CapAlert, *, mqtt_root: str, receipt_deadline: datetime
) -> Bulletin:
    """Update or cancel the warnings a CAP Update or Cancel names in its `<references>`."""
    identity = CapIdentity(alert.sender, alert.identifier, alert.sent)
    seen = session.scalar(
        select(BulletinCapMessage).where(
            BulletinCapMessage.cap_sender == identity.sender,
            BulletinCapMessage.cap_identifier == identity.identifier,
            BulletinCapMessage.cap_sent == identity.sent.astimezone(UTC),
        )
    )
    first = seen.bulletin if seen is not None else by_cap_identity(session, identity)
    if first is not None:
        raise Conflict(
            f"this CAP {alert.msg_type} (sender {identity.sender}, identifier {identity.identifier}, "
            f"sent {identity.sent.isoformat()}) was already applied to warning {first.public_id}"
        )
    targets: dict[int, Bulletin] = {}
    unknown: list[str] = []
    for ref in alert.referenced():
        found = by_cap_reference(session, CapIdentity(ref.sender, ref.identifier, ref.sent))
        if found is None:
            unknown.append(f"{ref.sender},{ref.identifier},{ref.sent.isoformat()}")
        else:
            targets.setdefault(found.id, found)
    if unknown:
        raise InvalidInput(
            f"this CAP {alert.msg_type} references alerts the hub does not hold: {' '.join(unknown)}",
            details={"unknown_references": unknown},
        )
    if alert.status not in (CapStatus.ACTUAL, CapStatus.EXERCISE):
        raise InvalidInput(f"a CAP {alert.msg_type} with status {alert.status} does not change warnings")
    for bulletin in targets.values():
        if bulletin.exercise != (alert.status is CapStatus.EXERCISE):
            raise InvalidInput(
                f"a CAP {alert.msg_type} with status {alert.status} cannot change "
                f"{'exercise' if bulletin.exercise else 'live'} warning {bulletin.public_id}: "
                "drill and live traffic never mix"
            )
        if not actor.can_write_incidents or bulletin.issuing_city_id != actor.city_id:
            raise Forbidden(f"only the city that issued warning {bulletin.public_id} may update or cancel it")
    fields = warning_fields_from_cap(alert) if alert.msg_type is CapMsgType.UPDATE else None
    for bulletin in targets.values():
        if fields is None:
            cancel(session, actor, bulletin.public_id)
        else:
            update(
                session,
                actor,
                bulletin.public_id,
                fields,
                receipt_deadline=receipt_deadline,
                mqtt_root=mqtt_root,
                revision=f"{identity.sender},{identity.identifier},{identity.sent.isoformat()}",
            )
        session.add(
            BulletinCapMessage(
                bulletin=bulletin,
                msg_type=alert.msg_type.value,
                cap_sender=identity.sender,
                cap_identifier=identity.identifier,
                cap_sent=identity.sent,
                received_at=utcnow(),
            )
        )
    session.flush()
    return next(iter(targets.values()))


def update(
    session: DbSession,
    actor: Actor,
    public_id: uuid.UUID,
    fields: dict[str, object],
    *,
    receipt_deadline: datetime,
    mqtt_root: str = DEFAULT_ROOT,
    revision: str | None = None,
) -> Bulletin:
    """Give a live bulletin of the actor's city new text, colour, area and expiry, audited, and
    send it again to every city it was addressed to (platforms, linkage systems, vehicles).

    `fields` are those of a `BulletinCreate`; scope and addressees stay as they were."""
    bulletin = _issued_by_actor(session, actor, public_id)
    if bulletin.cancelled_at is not None:
        raise Conflict(
            f"the {bulletin.kind} {bulletin.public_id} is cancelled; a cancelled one is not updated"
        )
    addressed = tuple(r.city.slug for r in bulletin.recipients)
    deadline = max(bulletin.receipt_deadline, receipt_deadline)
    data = decode_data(
        BulletinCreate,
        {
            **fields,
            "kind": bulletin.kind,
            "addressed_cities": addressed,
            "all_neighbours": False,
            "scope": bulletin.scope,
            "receipt_deadline": deadline,
        },
    )
    now = utcnow()
    if data.expires_at is not None and data.expires_at <= now:
        raise InvalidInput(
            f"the update expired at {data.expires_at.isoformat()}; an expired one is not distributed"
        )
    before = _snapshot(bulletin) | {
        "text": bulletin.text,
        "expires_at": bulletin.expires_at.isoformat() if bulletin.expires_at else None,
    }
    bulletin.colour = data.colour.value if data.colour else None
    bulletin.category = data.category.value
    bulletin.area = data.area
    bulletin.title = data.title
    bulletin.text = data.text
    bulletin.expires_at = data.expires_at
    bulletin.receipt_deadline = deadline
    for recipient in bulletin.recipients:
        # Every city that got it gets it again; the platform replaces the one it holds.
        recipient.delivered_at = None
        recipient.given_up_at = None
        recipient.redeliveries = 0
        recipient.next_attempt_at = None
        recipient.last_error = None
    session.flush()
    after = _snapshot(bulletin) | {
        "text": bulletin.text,
        "expires_at": bulletin.expires_at.isoformat() if bulletin.expires_at else None,
    }
    audit.record(session, actor, "bulletin.updated", "bulletin", bulletin.id, before=before, after=after)
    alert_linkage_systems(session, bulletin, root=mqtt_root, revision=revision or str(uuid.uuid4()))
    flow_requests.enqueue(
        session,
        DISTRIBUTE,
        key=f"{DISTRIBUTE}:{bulletin.public_id}:update-{uuid.uuid4()}",
        parameters={"bulletin_id": bulletin.id},
    )
    return bulletin
