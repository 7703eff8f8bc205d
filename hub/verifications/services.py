"""Verification requests (核报): one city asks another to confirm an incident by a deadline."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from contracts.verifications import VerificationAnswerCreate, VerificationCreate
from hub.incidents import services as incidents
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import Reminder
from hub.kernel.types import DbSession, utcnow
from hub.verifications.models import VerificationRequest

if TYPE_CHECKING:
    from hub.config import Settings

DELIVER = "deliver-verification"
CHASE = "chase-verifications"
FLAG_AFTER = timedelta(minutes=15)


def create(session: DbSession, actor: Actor, data: VerificationCreate) -> VerificationRequest:
    """Ask another city to verify something; the delivery to its platform is queued with it."""
    if not actor.can_write_incidents or actor.city_id is None:
        raise Forbidden("only coordinators and duty officers of a city send verification requests")
    to_city = cities.by_slug(session, data.to_city)
    if to_city.id == actor.city_id:
        raise InvalidInput("a verification request goes to another city", reason="verify_own_city")
    if data.deadline <= utcnow():
        raise InvalidInput("the deadline must be in the future", reason="deadline_past")
    if data.incident_id is not None and not incidents.exists(session, data.incident_id):
        raise NotFound(f"no incident {data.incident_id}")
    request = VerificationRequest(
        public_id=uuid.uuid4(),
        from_city_id=actor.city_id,
        to_city_id=to_city.id,
        incident_id=data.incident_id,
        subject=data.subject,
        question=data.question,
        deadline=data.deadline,
        issued_at=utcnow(),
        issued_by_id=actor.user_id,
        delivery_attempts=0,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "verification.requested",
        "verification_request",
        request.id,
        after={"to": to_city.slug, "subject": data.subject, "deadline": data.deadline.isoformat()},
    )
    flow_requests.enqueue(
        session, DELIVER, key=f"{DELIVER}:{request.public_id}", parameters={"verification_id": request.id}
    )
    return request


def get_for(session: DbSession, actor: Actor, public_id: uuid.UUID) -> VerificationRequest:
    """Return a request the actor's city sent or received; others get 'not found'."""
    request = session.scalar(select(VerificationRequest).where(VerificationRequest.public_id == public_id))
    if request is None or actor.city_id not in (request.from_city_id, request.to_city_id):
        raise NotFound(f"no verification request {public_id}")
    return request


def answer(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: VerificationAnswerCreate
) -> VerificationRequest:
    """Answer a request addressed to the actor's city, once."""
    request = get_for(session, actor, public_id)
    if request.to_city_id != actor.city_id or not actor.can_write_incidents:
        raise Forbidden("only the asked city's coordinators and duty officers answer")
    if request.answered_at is not None:
        raise Conflict("this request has already been answered", reason="already_answered")
    request.answer = data.answer
    request.answered_at = utcnow()
    request.answered_by = actor.name
    audit.record(
        session,
        actor,
        "verification.answered",
        "verification_request",
        request.id,
        after={"answer": data.answer},
    )
    return request


def for_city(session: DbSession, city_id: int, limit: int = 100) -> list[VerificationRequest]:
    """Return requests a city sent or received, newest first."""
    query = select(VerificationRequest).where(
        or_(VerificationRequest.from_city_id == city_id, VerificationRequest.to_city_id == city_id)
    )
    return list(session.scalars(query.order_by(VerificationRequest.id.desc()).limit(limit)))


def owed_by(session: DbSession, city_id: int) -> list[VerificationRequest]:
    """Return unanswered requests a city must answer, soonest deadline first."""
    query = select(VerificationRequest).where(
        VerificationRequest.to_city_id == city_id, VerificationRequest.answered_at.is_(None)
    )
    return list(session.scalars(query.order_by(VerificationRequest.deadline)))


def chase_late(session: DbSession, *, flag_after: timedelta = FLAG_AFTER) -> dict[str, int]:
    """Remind cities late with an answer, and flag them if still silent later."""
    now = utcnow()
    late = session.scalars(
        select(VerificationRequest).where(
            VerificationRequest.answered_at.is_(None),
            VerificationRequest.deadline <= now,
            VerificationRequest.flagged_at.is_(None),
        )
    ).all()
    counts = {"reminded": 0, "flagged": 0}
    for request in late:
        if request.reminded_at is None:
            request.reminded_at = now
            stage = "reminded"
        elif now >= request.deadline + flag_after:
            request.flagged_at = now
            stage = "flagged"
        else:
            continue
        session.add(
            Reminder(
                kind="verification",
                subject_id=request.id,
                city_id=request.to_city_id,
                stage=stage,
                created_at=now,
                details={"request": str(request.public_id)},
            )
        )
        counts[stage] += 1
    return counts


def undelivered(session: DbSession, request_id: int) -> VerificationRequest | None:
    """Return the request if its delivery to the asked city's platform is still pending."""
    request = session.get(VerificationRequest, request_id)
    return request if request is not None and request.delivered_at is None else None


def record_delivery(session: DbSession, request_id: int, error: str | None = None) -> None:
    """Record a delivery attempt to the asked city's platform."""
    request = session.get(VerificationRequest, request_id)
    if request is None:
        return
    request.delivery_attempts += 1
    if error is None:
        request.delivered_at = request.delivered_at or utcnow()
        request.last_error = None
    else:
        request.last_error = error[:2000]


def has_answers_to_chase(session: DbSession, now: datetime, *, flag_after: timedelta = FLAG_AFTER) -> bool:
    """Tell whether some late answer is due a reminder or a flag at `now`."""
    due = select(VerificationRequest.id).where(
        VerificationRequest.answered_at.is_(None),
        VerificationRequest.deadline <= now,
        VerificationRequest.flagged_at.is_(None),
        or_(VerificationRequest.reminded_at.is_(None), VerificationRequest.deadline <= now - flag_after),
    )
    return session.scalar(due.limit(1)) is not None


def schedule_chase(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for the round that reminds and flags cities late with their answers, when one is due.

    A slot with nothing to chase asks for nothing, so it leaves no flow run behind.
    """
    if has_answers_to_chase(session, now):
        slot = int(now.timestamp()) // settings.chase_seconds
        flow_requests.enqueue(session, CHASE, key=f"{CHASE}:{slot}", parameters={})
