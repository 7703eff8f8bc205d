"""Consultations and the regular conference: call, invite, answer, quorum, minutes, decisions.

The rules are in `hub.consultations.rules`; these functions take the session and the actor,
check, change, flush, audit, and queue whatever must happen next as keyed flow requests. They
never commit. Every wait for people (answers, the start time, the agenda deadline, the next
meeting of the conference) is a column here and a `Schedule` below, never a waiting flow run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from contracts.bulletins import BulletinCreate
from contracts.common import IncidentCategory
from contracts.consultations import (
    ActionItemState,
    AgendaItemSubmission,
    Answer,
    ConferenceBody,
    ConsultationCall,
    DecisionMode,
    InvitationAnswer,
    MeetingKind,
    MinutesRevision,
    Quorum,
    Resolution,
)
from contracts.partner import (
    HUB_EXPERT_ANSWER_PATH,
    HUB_INVITATION_ANSWER_PATH,
    InvitationMethod,
    InvitedExpert,
    MeetingInvitationDelivery,
)
from hub.action_items import rules as action_rules
from hub.action_items import services as action_items
from hub.action_items.models import ActionItem
from hub.bulletins import services as bulletins
from hub.consultations import calendar, rules
from hub.consultations.models import (
    AgendaItem,
    Attendance,
    ConferenceBodyRow,
    ExpertInvitation,
    Invitation,
    Meeting,
    MinutesRevisionRow,
    ResolutionRow,
    RotationEventRow,
)
from hub.incidents import services as incidents
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, Reminder, Role
from hub.kernel.types import DbSession, utcnow
from hub.mutual_aid import experts as registry_experts

if TYPE_CHECKING:
    from hub.config import Settings

PROPOSE = "propose-consultation"
INVITE = "deliver-invitations"
REMIND_ANSWERS = "remind-invitations"
QUORUM = "check-quorum"
PLAN = "plan-conference"
SEND_AGENDA = "send-agenda"
DISTRIBUTE_MINUTES = "distribute-minutes"
ORIGIN = "resolution"

# An incident at level II (重大) or above, or affecting two or more cities, calls for a consultation.
CONSULT_AT_LEVEL = 2
# Cities that have not answered are reminded this long after the invitation reached them, or
# half-way to the start if that comes sooner.
REMIND_AFTER = timedelta(minutes=10)
PROPOSED_LEAD = timedelta(hours=1)
# The experts a consultation on an incident asks for, by the incident's category, when the
# coordinator names none: the registry's expert types (contracts.resource_types).
SPECIALITIES_BY_CATEGORY: dict[IncidentCategory, tuple[str, ...]] = {
    IncidentCategory.NATURAL: ("expert.flood", "expert.geology"),
    IncidentCategory.ACCIDENT: ("expert.hazchem", "expert.structural"),
    IncidentCategory.PUBLIC_HEALTH: ("expert.medical",),
    IncidentCategory.SOCIAL_SECURITY: (),
}

# The kinds of the kernel's reminder rows this capability writes.
CITY_REMINDER = "invitation"
EXPERT_REMINDER = "expert_invitation"

PROPOSED = "proposed"
CALLED = "called"
OPENED = "opened"
CLOSED = "closed"
CANCELLED = "cancelled"
LIVE = (CALLED, OPENED)


def _snapshot(meeting: Meeting) -> dict[str, object]:
    return {
        "kind": meeting.kind,
        "status": meeting.status,
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "ends_at": meeting.ends_at.isoformat(),
        "video_link": meeting.video_link,
        "chair": meeting.chair_city.slug if meeting.chair_city else None,
        "invited": sorted(i.city.slug for i in meeting.invitations),
        "experts": sorted(str(e.resource_id) for e in meeting.experts),
        "sequence": meeting.sequence,
    }


def _require_coordinator(actor: Actor, what: str) -> int:
    if actor.role is not Role.COORDINATOR or actor.city_id is None:
        raise Forbidden(f"only a city's coordinators {what}")
    return actor.city_id


def _require_writer(actor: Actor, what: str) -> int:
    if not actor.can_write_incidents or actor.city_id is None:
        raise Forbidden(f"only coordinators and duty officers of a city {what}")
    return actor.city_id


def _quorum_rule(meeting: Meeting) -> Quorum:
    return Quorum.model_validate(meeting.quorum)


# Reading ------------------------------------------------------------------------------------------


def get(session: DbSession, public_id: uuid.UUID) -> Meeting:
    """Return a meeting by its public id, or fail."""
    meeting = session.scalar(
        select(Meeting)
        .where(Meeting.public_id == public_id)
        .options(selectinload(Meeting.invitations), selectinload(Meeting.revisions))
    )
    if meeting is None:
        raise NotFound(f"no meeting {public_id}")
    return meeting


def get_by_id(session: DbSession, meeting_id: int) -> Meeting:
    """Return a meeting by the hub's id (for flows), or fail."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        raise NotFound(f"no meeting {meeting_id}")
    return meeting


def is_member(meeting: Meeting, city_id: int | None) -> bool:
    """Whether a city takes part in the meeting: its organizer, chair or an invited city."""
    return city_id is not None and (
        city_id in (meeting.organizer_city_id, meeting.chair_city_id)
        or any(i.city_id == city_id for i in meeting.invitations)
    )


def get_for(session: DbSession, actor: Actor, public_id: uuid.UUID) -> Meeting:
    """Return a meeting its member cities (and admins) may see; to others it does not exist."""
    meeting = get(session, public_id)
    if not (actor.is_admin or is_member(meeting, actor.city_id)):
        raise NotFound(f"no meeting {public_id}")
    return meeting


def for_incident(session: DbSession, actor: Actor, incident_id: int) -> list[Meeting]:
    """Return the meetings on an incident the actor's city takes part in (admins all), oldest first."""
    query = (
        select(Meeting)
        .where(Meeting.incident_id == incident_id)
        .options(selectinload(Meeting.invitations))
        .order_by(Meeting.created_at, Meeting.id)
    )
    return [m for m in session.scalars(query) if actor.is_admin or is_member(m, actor.city_id)]


def visible_list(session: DbSession, actor: Actor, limit: int = 200) -> list[Meeting]:
    """Return the meetings the actor's city takes part in (all of them for admins), newest first."""
    query = select(Meeting).order_by(Meeting.starts_at.desc(), Meeting.id.desc()).limit(limit)
    if not actor.is_admin:
        invited = select(Invitation.meeting_id).where(Invitation.city_id == actor.city_id)
        query = query.where(
            (Meeting.organizer_city_id == actor.city_id)
            | (Meeting.chair_city_id == actor.city_id)
            | Meeting.id.in_(invited)
        )
    return list(session.scalars(query.options(selectinload(Meeting.invitations))))


def invitation_of(meeting: Meeting, city_id: int | None) -> Invitation | None:
    """Return a city's invitation to the meeting, if it has one."""
    return next((i for i in meeting.invitations if i.city_id == city_id), None)


def minutes_of(meeting: Meeting) -> rules.Minutes:
    """Return the meeting's minutes as the rules see them."""
    revisions = tuple(
        rules.Revision(r.number, r.author, r.city.slug, r.at, r.content, r.public_part)
        for r in meeting.revisions
    )
    return rules.Minutes(
        revisions=revisions,
        signed_at=meeting.signed_at,
        signed_by=meeting.signed_by,
        signed_revision=meeting.signed_revision,
    )


def represented(meeting: Meeting) -> set[str]:
    """Return the cities that will be or were there: by the roll-call once taken, else by answers."""
    if meeting.attendance:
        return {a.city.slug for a in meeting.attendance if a.present}
    return rules.represented_by_answers(
        {i.city.slug: Answer(i.answer) if i.answer else None for i in meeting.invitations}
    )


def quorum_now(meeting: Meeting) -> rules.QuorumResult:
    """Return where the quorum stands with the answers and roll-call so far.

    Only the invited cities count: the quorum rule is a share of the member cities, who decide
    and vote on the resolutions. The experts advise and vote on nothing, and an expert belongs to a
    city's registry, so counting them would let one city's experts make up for absent cities.
    `experts_attending` gives their figure, shown beside the quorum.
    """
    return rules.quorum(
        [i.city.slug for i in meeting.invitations], represented(meeting), _quorum_rule(meeting)
    )


def experts_attending(meeting: Meeting) -> tuple[int, int]:
    """Return how many invited experts will be there (accepted, or sent a delegate) and how many were invited.

    Shown beside the quorum and recorded when the session opens; never counted in it (see `quorum_now`).
    """
    attending = sum(1 for e in meeting.experts if e.answer is not None and Answer(e.answer).attends)
    return attending, len(meeting.experts)


# Calling ------------------------------------------------------------------------------------------

_Invitee = TypeVar("_Invitee", Invitation, ExpertInvitation)


def _invite(session: DbSession, meeting: Meeting, invitees: dict[int, str]) -> None:
    known = {i.city_id for i in meeting.invitations}
    now = utcnow()
    for city_id, reason in sorted(invitees.items()):
        if city_id in known:
            continue
        invitation = Invitation(meeting=meeting, city_id=city_id, reason=reason, note="")
        if city_id == meeting.organizer_city_id:
            # The city that calls the meeting attends it; it is not asked to answer itself.
            invitation.answer = Answer.ACCEPT.value
            invitation.answered_at = now
            invitation.answered_by = "organizer"
        session.add(invitation)
    session.flush()
    session.refresh(meeting, ["invitations"])


def _invite_experts(session: DbSession, meeting: Meeting) -> None:
    """Invite the available experts of the meeting's specialities held by its invited cities."""
    known = {e.resource_id for e in meeting.experts}
    city_ids = [i.city_id for i in meeting.invitations]
    for expert in registry_experts.available(session, meeting.expert_specialities, city_ids):
        if expert.resource_id in known:
            continue
        session.add(
            ExpertInvitation(
                meeting=meeting,
                resource_id=expert.resource_id,
                city_id=expert.city_id,
                speciality=expert.speciality,
                name=expert.name[:200],
                contact_phone=expert.contact_phone[:32],
                note="",
            )
        )
    session.flush()
    session.refresh(meeting, ["experts"])


def _incident_invitees(session: DbSession, incident_id: int) -> dict[int, str]:
    """Return the affected cities of an incident, their neighbours and the reporting city."""
    incident = incidents.get_incident(session, incident_id)
    chosen: dict[int, str] = {incident.reporting_city_id: "organizer"}
    for city in incident.affected_cities:
        chosen.setdefault(city.id, "affected")
    for city in incident.affected_cities:
        for neighbour in city.neighbours:
            chosen.setdefault(neighbour.id, "neighbour")
    return chosen


def _request_delivery(session: DbSession, meeting: Meeting) -> None:
    flow_requests.enqueue(
        session,
        INVITE,
        key=f"{INVITE}:{meeting.public_id}:{meeting.sequence}",
        parameters={"meeting_id": meeting.id},
    )


def call(session: DbSession, actor: Actor, data: ConsultationCall) -> Meeting:
    """Call a consultation as a coordinator: the meeting, its invitations, and their delivery."""
    city_id = _require_coordinator(actor, "call a consultation")
    now = utcnow()
    if data.starts_at <= now - timedelta(minutes=5):
        raise InvalidInput("the consultation cannot start in the past", reason="starts_in_past")
    invitees = {c.id: "invited" for c in cities.by_slugs(session, list(data.invited_cities))}
    incident_id = None
    if data.incident_id is not None:
        incident_id = incidents.id_for_public_id(session, data.incident_id)
        for invitee, reason in _incident_invitees(session, incident_id).items():
            invitees.setdefault(invitee, reason)
    invitees[city_id] = "organizer"
    meeting = Meeting(
        public_id=uuid.uuid4(),
        kind=MeetingKind.CONSULTATION.value,
        status=CALLED,
        incident_id=incident_id,
        title=data.title,
        starts_at=data.starts_at,
        ends_at=data.starts_at + timedelta(minutes=data.duration_minutes),
        location=data.location,
        video_link=data.video_link,
        organizer_city_id=city_id,
        chair_city_id=city_id,
        quorum=rules.MAJORITY.model_dump(),
        expert_specialities=list(data.expert_specialities),
        sequence=0,
        exercise=data.exercise,
        created_at=now,
        called_at=now,
        updated_at=now,
    )
    session.add(meeting)
    session.flush()
    _invite(session, meeting, invitees)
    _invite_experts(session, meeting)
    audit.record(session, actor, "meeting.called", "meeting", meeting.id, after=_snapshot(meeting))
    _put_on_desks(session, actor, meeting, now)
    _request_delivery(session, meeting)
    return meeting


def qualifies(level: int, affected: int) -> bool:
    """Whether an incident calls for a consultation: level II or above, or two or more cities."""
    return level <= CONSULT_AT_LEVEL or affected >= 2


def request_proposal(session: DbSession, incident_id: int) -> bool:
    """Ask for a consultation to be proposed on an incident that qualifies; return whether it does.

    The key names the incident, so raising it again, or notifying twice, proposes once.
    """
    incident = incidents.get_incident(session, incident_id)
    if not qualifies(incident.level, len(incident.affected_cities)):
        return False
    flow_requests.enqueue(
        session, PROPOSE, key=f"{PROPOSE}:{incident.public_id}", parameters={"incident_id": incident_id}
    )
    return True


def propose_for_incident(session: DbSession, incident_id: int) -> Meeting | None:
    """Propose a consultation to the incident's reporting city, once; it calls it or lets it lapse."""
    existing = session.scalar(select(Meeting).where(Meeting.incident_id == incident_id))
    if existing is not None:
        return None
    incident = incidents.get_incident(session, incident_id)
    now = utcnow()
    starts_at = (now + PROPOSED_LEAD).replace(second=0, microsecond=0)
    meeting = Meeting(
        public_id=uuid.uuid4(),
        kind=MeetingKind.CONSULTATION.value,
        status=PROPOSED,
        incident_id=incident_id,
        title=f"会商：{incident.title}"[:200],
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        location="",
        organizer_city_id=incident.reporting_city_id,
        chair_city_id=incident.reporting_city_id,
        quorum=rules.MAJORITY.model_dump(),
        expert_specialities=list(SPECIALITIES_BY_CATEGORY[IncidentCategory(incident.category)]),
        sequence=0,
        exercise=incident.exercise,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    session.flush()
    _invite(session, meeting, _incident_invitees(session, incident_id))
    _invite_experts(session, meeting)
    audit.record(
        session,
        Actor.system("propose-consultation"),
        "meeting.proposed",
        "meeting",
        meeting.id,
        after=_snapshot(meeting),
        city_id=incident.reporting_city_id,
    )
    return meeting


def confirm_proposal(
    session: DbSession,
    actor: Actor,
    public_id: uuid.UUID,
    *,
    starts_at: datetime | None = None,
    video_link: str | None = None,
) -> Meeting:
    """Call a proposed consultation as a coordinator of its organizer city."""
    city_id = _require_coordinator(actor, "call a consultation")
    meeting = get(session, public_id)
    if meeting.organizer_city_id != city_id:
        raise Forbidden("only the organizer city calls its proposed consultation")
    if meeting.status != PROPOSED:
        raise Conflict("the consultation is not a proposal any more")
    before = _snapshot(meeting)
    now = utcnow()
    if starts_at is not None:
        meeting.ends_at = starts_at + (meeting.ends_at - meeting.starts_at)
        meeting.starts_at = starts_at
    if video_link is not None:
        meeting.video_link = video_link
    meeting.status = CALLED
    meeting.called_at = now
    meeting.updated_at = now
    session.flush()
    audit.record(
        session, actor, "meeting.called", "meeting", meeting.id, before=before, after=_snapshot(meeting)
    )
    _put_on_desks(session, actor, meeting, now)
    _request_delivery(session, meeting)
    return meeting


def cancel(session: DbSession, actor: Actor, public_id: uuid.UUID, reason: str) -> Meeting:
    """Cancel a meeting as its organizer; the calendar shows it cancelled (SEQUENCE raised)."""
    city_id = _require_coordinator(actor, "cancel a meeting")
    meeting = get(session, public_id)
    if meeting.organizer_city_id != city_id:
        raise Forbidden("only the organizer city cancels its meeting")
    if meeting.status in (CLOSED, CANCELLED):
        raise Conflict(f"the meeting is {meeting.status}")
    before = _snapshot(meeting)
    meeting.status = CANCELLED
    meeting.sequence += 1
    meeting.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "meeting.cancelled",
        "meeting",
        meeting.id,
        before=before,
        after={**_snapshot(meeting), "reason": reason},
    )
    # The platforms that took the invitation get METHOD:CANCEL at the raised SEQUENCE.
    _request_delivery(session, meeting)
    return meeting


# Invitations --------------------------------------------------------------------------------------


def _put_on_desks(session: DbSession, actor: Actor, meeting: Meeting, now: datetime) -> int:
    """Put the called meeting's invitations not yet delivered on the desks; return how many.

    The desks (the invited cities', and for an expert the desk of the city whose registry holds
    them) read these very rows, so marking them in the transaction that calls the meeting is the
    delivery: the invitation is there the moment the call commits, with no flow in between. Only
    the platforms are left to the `deliver-invitations` flow.
    """
    delivered = 0
    invitees: list[Invitation | ExpertInvitation] = [*meeting.invitations, *meeting.experts]
    for invitation in invitees:
        if invitation.delivered_at is None:
            invitation.delivered_at = now
            delivered += 1
    if delivered:
        session.flush()
        audit.record(
            session,
            actor,
            "meeting.invitations_delivered",
            "meeting",
            meeting.id,
            after={"delivered": delivered},
            city_id=meeting.organizer_city_id,
        )
    return delivered


def answer(session: DbSession, actor: Actor, public_id: uuid.UUID, data: InvitationAnswer) -> Invitation:
    """Record the actor's own city's answer; a later answer replaces an earlier one."""
    city_id = _require_writer(actor, "answer invitations")
    meeting = get_for(session, actor, public_id)
    invitation = invitation_of(meeting, city_id)
    if invitation is None:
        raise Forbidden("your city is not invited to this meeting")
    _record_answer(session, actor, meeting, invitation, data, "meeting.answered")
    return invitation


def _record_answer(
    session: DbSession,
    actor: Actor,
    meeting: Meeting,
    invitation: Invitation | ExpertInvitation,
    data: InvitationAnswer,
    action: str,
) -> None:
    if meeting.status not in LIVE:
        raise Conflict(f"the meeting is {meeting.status}; answers are closed")
    before: dict[str, object] = {"answer": invitation.answer, "delegate_name": invitation.delegate_name}
    invitation.answer = data.answer.value
    invitation.delegate_name = data.delegate_name
    invitation.note = data.note
    invitation.answered_at = utcnow()
    invitation.answered_by = actor.name
    session.flush()
    after: dict[str, object] = {"answer": invitation.answer, "delegate_name": invitation.delegate_name}
    if isinstance(invitation, ExpertInvitation):
        after["expert"] = str(invitation.resource_id)
    audit.record(session, actor, action, "meeting", meeting.id, before=before, after=after)


def _remind_at(meeting: Meeting, invitation: Invitation | ExpertInvitation) -> datetime | None:
    if invitation.delivered_at is None:
        return None
    halfway = invitation.delivered_at + (meeting.starts_at - invitation.delivered_at) / 2
    return min(invitation.delivered_at + REMIND_AFTER, halfway)


def _owes_reminder(meeting: Meeting, invitation: Invitation | ExpertInvitation, now: datetime) -> bool:
    at = _remind_at(meeting, invitation)
    return invitation.answer is None and invitation.reminded_at is None and at is not None and at <= now


def _silent(model: type[_Invitee]) -> Select[int]:
    return select(model.meeting_id).where(
        model.answer.is_(None), model.reminded_at.is_(None), model.delivered_at.is_not(None)
    )


def unanswered_due(session: DbSession, now: datetime) -> list[tuple[int, uuid.UUID]]:
    """Return (id, public id) of live meetings with a silent city or expert whose reminder time has come."""
    # A subquery rather than DISTINCT: PostgreSQL cannot compare the meeting's JSON column.
    silent = _silent(Invitation).union(_silent(ExpertInvitation))
    query = select(Meeting).where(Meeting.status == CALLED, Meeting.starts_at > now, Meeting.id.in_(silent))
    due = []
    for meeting in session.scalars(query):
        invitees: list[Invitation | ExpertInvitation] = [*meeting.invitations, *meeting.experts]
        if any(_owes_reminder(meeting, i, now) for i in invitees):
            due.append((meeting.id, meeting.public_id))
    return due


def remind_unanswered(session: DbSession, meeting_id: int, now: datetime | None = None) -> int:
    """Remind each invited city and expert that has not answered, once; return how many were reminded.

    An expert's reminder goes to the desk of the city whose registry holds them, whose duty
    officers reach the expert and relay the answer (as the invitation did).
    """
    now = now or utcnow()
    meeting = get_by_id(session, meeting_id)
    if meeting.status != CALLED:
        return 0
    reminded = 0
    invitees: list[Invitation | ExpertInvitation] = [*meeting.invitations, *meeting.experts]
    for invitation in invitees:
        if not _owes_reminder(meeting, invitation, now):
            continue
        invitation.reminded_at = now
        details: dict[str, object] = {"meeting": str(meeting.public_id)}
        if isinstance(invitation, ExpertInvitation):
            details |= {"expert": str(invitation.resource_id), "name": invitation.name}
        session.add(
            Reminder(
                kind=EXPERT_REMINDER if isinstance(invitation, ExpertInvitation) else CITY_REMINDER,
                subject_id=invitation.id,
                city_id=invitation.city_id,
                stage="reminded",
                created_at=now,
                details=details,
            )
        )
        reminded += 1
    return reminded


def invitations_to_answer(session: DbSession, city_id: int) -> list[Invitation]:
    """Return the delivered invitations a city has not answered, soonest meeting first."""
    return _unanswered(session, Invitation, city_id)


def _unanswered(session: DbSession, model: type[_Invitee], city_id: int) -> list[_Invitee]:
    query = (
        select(model)
        .join(Meeting)
        .where(
            model.city_id == city_id,
            model.answer.is_(None),
            model.delivered_at.is_not(None),
            Meeting.status.in_(LIVE),
        )
        .order_by(Meeting.starts_at)
    )
    return list(session.scalars(query))


def proposals_for(session: DbSession, city_id: int) -> list[Meeting]:
    """Return the consultations proposed to a city that it has not called yet."""
    query = select(Meeting).where(Meeting.organizer_city_id == city_id, Meeting.status == PROPOSED)
    return list(session.scalars(query.order_by(Meeting.created_at)))


def experts_to_answer(session: DbSession, city_id: int) -> list[ExpertInvitation]:
    """Return the delivered invitations of the city's experts not answered yet, soonest first."""
    return _unanswered(session, ExpertInvitation, city_id)


def answer_for_expert(
    session: DbSession, actor: Actor, public_id: uuid.UUID, invitation_id: uuid.UUID, data: InvitationAnswer
) -> ExpertInvitation:
    """Record an expert's answer, relayed by the duty officers of the city whose registry holds them."""
    city_id = _require_writer(actor, "answer invitations")
    meeting = get(session, public_id)
    invitation = next((e for e in meeting.experts if e.public_id == invitation_id), None)
    if invitation is None:
        raise NotFound(f"no expert invitation {invitation_id} in meeting {public_id}")
    if invitation.city_id != city_id:
        raise Forbidden("only the expert's own city answers for them")
    _record_answer(session, actor, meeting, invitation, data, "meeting.expert_answered")
    return invitation


# To the cities' platforms -------------------------------------------------------------------------

CITY = "city"
EXPERT = "expert"


def _invitation_row(session: DbSession, kind: str, row_id: int) -> Invitation | ExpertInvitation:
    row: Invitation | ExpertInvitation | None = (
        session.get(Invitation, row_id) if kind == CITY else session.get(ExpertInvitation, row_id)
    )
    if row is None:
        raise NotFound(f"no {kind} invitation {row_id}")
    return row


def _method(meeting: Meeting) -> InvitationMethod | None:
    if meeting.status in LIVE:
        return InvitationMethod.REQUEST
    if meeting.status == CANCELLED:
        return InvitationMethod.CANCEL
    return None


def platform_deliveries_owed(session: DbSession, meeting_id: int) -> list[tuple[str, int]]:
    """Return (kind, row id) of the invitations the platforms do not hold at the meeting's SEQUENCE.

    A called meeting owes every invitee its REQUEST; a cancelled one owes CANCEL only to those that
    took a REQUEST before; a proposal or a closed meeting owes nothing.
    """
    meeting = get_by_id(session, meeting_id)
    method = _method(meeting)
    if method is None:
        return []
    owed: list[tuple[str, int]] = []
    for kind, rows in ((CITY, meeting.invitations), (EXPERT, meeting.experts)):
        for row in rows:
            if row.platform_sequence == meeting.sequence:
                continue
            if method is InvitationMethod.CANCEL and row.platform_sequence is None:
                continue
            owed.append((kind, row.id))
    return owed


def _itip(meeting: Meeting, method: InvitationMethod) -> bytes:
    # The message for a given SEQUENCE must be the same whenever it is sent again (the platform
    # compares a repeated delivery with the first), so it shows no answers and is stamped with
    # the meeting's last change, not the time of sending.
    shown = calendar_meeting(meeting, with_answers=False)
    if method is InvitationMethod.CANCEL:
        return calendar.cancel(shown, now=meeting.updated_at)
    return calendar.request(shown, now=meeting.updated_at)


def invitation_delivery(
    session: DbSession, kind: str, row_id: int
) -> tuple[str, MeetingInvitationDelivery] | None:
    """Return the addressed city and the delivery an invitation owes its platform, or None if it owes none."""
    row = _invitation_row(session, kind, row_id)
    meeting = row.meeting
    method = _method(meeting)
    if method is None or row.platform_sequence == meeting.sequence:
        return None
    if method is InvitationMethod.CANCEL and row.platform_sequence is None:
        return None
    if isinstance(row, ExpertInvitation):
        answer_path = HUB_EXPERT_ANSWER_PATH.format(meeting_id=meeting.public_id, invitation_id=row.public_id)
        expert = InvitedExpert(resource_id=row.resource_id, name=row.name, speciality=row.speciality)
    else:
        answer_path = HUB_INVITATION_ANSWER_PATH.format(meeting_id=meeting.public_id)
        expert = None
    delivery = MeetingInvitationDelivery(
        id=row.public_id,
        meeting_id=meeting.public_id,
        sequence=meeting.sequence,
        method=method,
        city=row.city.slug,
        organizer_city=meeting.organizer_city.slug,
        chair_city=meeting.chair_city.slug,
        title=meeting.title,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        location=meeting.location,
        video_link=meeting.video_link,
        expert=expert,
        answer_path=answer_path,
        calendar=_itip(meeting, method).decode("utf-8"),
        exercise=meeting.exercise,
    )
    return row.city.slug, delivery


def record_platform_delivery(
    session: DbSession, kind: str, row_id: int, sequence: int, platform_ref: str | None
) -> bool:
    """Note that the invitation's platform took SEQUENCE `sequence` (or that the city has none); once."""
    row = _invitation_row(session, kind, row_id)
    if row.platform_sequence is not None and row.platform_sequence >= sequence:
        return False
    row.platform_sequence = sequence
    row.platform_delivered_at = utcnow()
    row.platform_ref = platform_ref
    row.platform_error = None
    session.flush()
    return True


def record_platform_failure(session: DbSession, kind: str, row_id: int, error: str) -> None:
    """Keep why the platform did not take the invitation; the next round tries again."""
    row = _invitation_row(session, kind, row_id)
    row.platform_error = error[:2_000]
    session.flush()


def undelivered_to_platforms(session: DbSession) -> list[tuple[int, uuid.UUID, int]]:
    """Return (id, public id, SEQUENCE) of live or cancelled meetings with a failed platform delivery."""
    failed = (
        select(Invitation.meeting_id)
        .where(Invitation.platform_error.is_not(None))
        .union(select(ExpertInvitation.meeting_id).where(ExpertInvitation.platform_error.is_not(None)))
    )
    query = select(Meeting.id, Meeting.public_id, Meeting.sequence).where(
        Meeting.status.in_((*LIVE, CANCELLED)), Meeting.id.in_(failed)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(query)]


# The session --------------------------------------------------------------------------------------


def open_session(
    session: DbSession, meeting_id: int, now: datetime | None = None
) -> rules.QuorumResult | None:
    """At the start, apply the quorum rule and open the session, with "quorum not met" if so; once."""
    meeting = get_by_id(session, meeting_id)
    if meeting.status != CALLED or meeting.quorum_checked_at is not None:
        return None
    result = quorum_now(meeting)
    experts, experts_invited = experts_attending(meeting)
    meeting.quorum_met = result.met
    meeting.quorum_checked_at = now or utcnow()
    meeting.status = OPENED
    session.flush()
    audit.record(
        session,
        Actor.system("check-quorum"),
        "meeting.opened",
        "meeting",
        meeting.id,
        after={
            "quorum_met": result.met,
            "represented": result.represented,
            "needed": result.needed,
            "missing": list(result.missing),
            # Beside the quorum, not in it.
            "experts_attending": experts,
            "experts_invited": experts_invited,
        },
        city_id=meeting.organizer_city_id,
    )
    return result


def _require_chair(actor: Actor, meeting: Meeting, what: str) -> None:
    city_id = _require_writer(actor, what)
    if city_id != meeting.chair_city_id:
        raise Forbidden(f"only the chair city ({meeting.chair_city.slug}) may {what}")


def record_attendance(
    session: DbSession, actor: Actor, public_id: uuid.UUID, present: list[str]
) -> list[Attendance]:
    """Record the roll-call as the chair: which invited cities were there."""
    meeting = get(session, public_id)
    _require_chair(actor, meeting, "take the roll-call")
    invited = {i.city.slug: i.city_id for i in meeting.invitations}
    strangers = sorted(set(present) - set(invited))
    if strangers:
        raise InvalidInput(f"not invited: {', '.join(strangers)}")
    rows = {a.city_id: a for a in meeting.attendance}
    now = utcnow()
    for slug, city_id in sorted(invited.items()):
        row = rows.get(city_id)
        if row is None:
            row = Attendance(meeting=meeting, city_id=city_id, recorded_by=actor.name)
            session.add(row)
        row.present = slug in present
        row.recorded_at = now
        row.recorded_by = actor.name
    session.flush()
    session.refresh(meeting, ["attendance"])
    audit.record(
        session, actor, "meeting.roll_call", "meeting", meeting.id, after={"present": sorted(present)}
    )
    return list(meeting.attendance)


def submit_agenda_item(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: AgendaItemSubmission
) -> AgendaItem:
    """Add the actor's city's agenda item, before the agenda deadline if the meeting has one."""
    city_id = _require_writer(actor, "submit agenda items")
    meeting = get_for(session, actor, public_id)
    if not is_member(meeting, city_id):
        raise Forbidden("your city does not take part in this meeting")
    now = utcnow()
    if meeting.status not in (PROPOSED, *LIVE):
        raise Conflict(f"the meeting is {meeting.status}")
    if meeting.agenda_sent_at is not None or (
        meeting.agenda_deadline is not None and now > meeting.agenda_deadline
    ):
        raise Conflict("agenda submissions closed at the deadline", reason="agenda_closed")
    item = AgendaItem(
        meeting=meeting,
        city_id=city_id,
        title=data.title,
        summary=data.summary,
        submitted_at=now,
        duration_minutes=data.duration_minutes,
        carried_over=0,
    )
    session.add(item)
    session.flush()
    audit.record(session, actor, "meeting.agenda_item", "meeting", meeting.id, after={"title": data.title})
    return item


def save_minutes(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: MinutesRevision
) -> MinutesRevisionRow | None:
    """Save the minutes as a member city; a save that changes something adds a revision.

    Signed minutes refuse any save (409), and so does a save over a newer revision.
    """
    city_id = _require_writer(actor, "edit minutes")
    meeting = get_for(session, actor, public_id)
    if not is_member(meeting, city_id):
        raise Forbidden("your city does not take part in this meeting")
    city = cities.by_id(session, city_id)
    saved = rules.save_minutes(
        minutes_of(meeting),
        author=actor.name,
        city=city.slug,
        at=utcnow(),
        content=data.content,
        public_part=data.public_part,
        base_revision=data.base_revision,
    )
    if saved.revision is None:
        return None
    row = MinutesRevisionRow(
        meeting=meeting,
        number=saved.revision.number,
        author=actor.name,
        city_id=city_id,
        at=saved.revision.at,
        content=saved.revision.content,
        public_part=saved.revision.public_part,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, actor, "meeting.minutes_saved", "meeting", meeting.id, after={"revision": row.number}
    )
    return row


def add_resolution(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: Resolution, *, now: datetime | None = None
) -> tuple[ResolutionRow, list[ActionItem]]:
    """Record a resolution as the chair; an adopted one that asks for follow-up opens its action items.

    `now` is the moment of the decision (the demo's history records past meetings with it)."""
    meeting = get(session, public_id)
    _require_chair(actor, meeting, "record resolutions")
    if meeting.signed_at is not None:
        raise rules.MinutesSigned("the minutes are signed; the meeting's decisions are final")
    votes = {v.city: v.vote for v in data.votes}
    voters = represented(meeting) if data.decision_mode is DecisionMode.VOTE else set()
    outcome = rules.resolution_outcome(data.decision_mode, votes, voters, _quorum_rule(meeting))
    row = ResolutionRow(
        meeting=meeting,
        number=len(meeting.resolutions) + 1,
        text=data.text,
        decision_mode=data.decision_mode.value,
        votes={city: vote.value for city, vote in votes.items()},
        outcome=outcome.value,
        follow_up=data.follow_up,
        recorded_at=now or utcnow(),
        recorded_by=actor.name,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "meeting.resolution",
        "meeting",
        meeting.id,
        after={"number": row.number, "outcome": row.outcome, "votes": row.votes},
    )
    opened: list[ActionItem] = []
    if outcome is rules.Outcome.ADOPTED and data.follow_up:
        opened.extend(
            action_items.open_items(
                session,
                actor,
                data.action_items,
                origin=ORIGIN,
                origin_id=row.id,
                context_id=meeting.public_id,
                chair_city_id=meeting.chair_city_id,
                now=now,
            )
        )
    return row, opened


def sign(session: DbSession, actor: Actor, public_id: uuid.UUID) -> Meeting:
    """Sign the minutes as the chair (网上签办); from then on they and the decisions are frozen."""
    city_id = _require_writer(actor, "sign minutes")
    meeting = get(session, public_id)
    city = cities.by_id(session, city_id)
    signed = rules.sign_minutes(
        minutes_of(meeting), by=actor.name, by_city=city.slug, chair_city=meeting.chair_city.slug, at=utcnow()
    )
    meeting.signed_at = signed.signed_at
    meeting.signed_by = signed.signed_by
    meeting.signed_revision = signed.signed_revision
    meeting.status = CLOSED
    meeting.updated_at = utcnow()
    session.flush()
    audit.record(
        session, actor, "meeting.signed", "meeting", meeting.id, after={"revision": meeting.signed_revision}
    )
    # The signed minutes go to the members as a bulletin; the key names the meeting, so once.
    flow_requests.enqueue(
        session,
        DISTRIBUTE_MINUTES,
        key=f"{DISTRIBUTE_MINUTES}:{meeting.public_id}",
        parameters={"meeting_id": meeting.id},
    )
    return meeting


# Minutes out --------------------------------------------------------------------------------------

MINUTES_TITLE = "【会议纪要】"
PUBLIC_TITLE = "【会议公告】"
# As BulletinCreate's Text allows.
BULLETIN_TEXT_LIMIT = 10_000
MINUTES_RECEIPT_WITHIN = timedelta(hours=24)


def minutes_page(meeting: Meeting) -> str:
    """Return the path of the meeting's page on the hub, where the full minutes are."""
    return f"/consultations/{meeting.public_id}"


def _category(session: DbSession, meeting: Meeting) -> IncidentCategory:
    """Return the category a bulletin about the meeting is filed under.

    A consultation on an incident takes the incident's category. The regular conference has
    none, but the category is required on the wire (partners' `BulletinDelivery` validates it
    against the four categories of the Emergency Response Law), so a fifth, neutral value would
    make their platforms refuse the delivery. The conference's standing business in the region is
    flood control and disaster prevention, so natural disasters is the closest of the four.
    """
    if meeting.incident_id is not None:
        return IncidentCategory(incidents.get_incident(session, meeting.incident_id).category)
    return IncidentCategory.NATURAL


def _signed_text(meeting: Meeting) -> rules.Revision | None:
    minutes = minutes_of(meeting)
    return next((r for r in minutes.revisions if r.number == meeting.signed_revision), None)


def minutes_bulletin_text(session: DbSession, meeting: Meeting, *, limit: int = BULLETIN_TEXT_LIMIT) -> str:
    """Return the signed minutes as a bulletin's text; when they are too long for one, the
    resolutions and action items with a pointer to the full minutes on the meeting's page."""
    revision = _signed_text(meeting)
    content = revision.content.strip() if revision is not None else ""
    signed = ""
    if meeting.signed_at is not None:
        signed = f"（{meeting.signed_by} 于 {meeting.signed_at:%Y-%m-%d %H:%M} UTC 签发）"
    full = f"{content}\n\n{signed}".strip()
    if content and len(full) <= limit:
        return full
    lines = [f"纪要全文超出通报篇幅，此处仅列决议和督办事项；完整纪要见会商页面 {minutes_page(meeting)}。"]
    lines.append("")
    lines.append("决议：")
    for resolution in meeting.resolutions:
        if resolution.outcome == rules.Outcome.ADOPTED.value:
            lines.append(f"{resolution.number}. {resolution.text}")
    items = action_items.for_context(session, meeting.public_id)
    if items:
        lines.append("")
        lines.append("督办事项：")
        for item in items:
            lines.append(f"- {item.title}（责任城市 {item.owner_city.name_zh}，{item.due_on:%Y-%m-%d} 前）")
    lines.extend(("", signed))
    text = "\n".join(lines).strip()
    if len(text) > limit:
        marker = "……（余见会商页面）"
        text = text[: limit - len(marker)] + marker
    return text


def _issuer(meeting: Meeting, name: str) -> Actor:
    # The bulletin comes from the organizer city; the hub issues it on that city's behalf.
    return Actor("system", name, meeting.organizer_city_id, Role.COORDINATOR)


def _member_slugs(meeting: Meeting) -> tuple[str, ...]:
    return tuple(sorted(i.city.slug for i in meeting.invitations if i.city_id != meeting.organizer_city_id))


def distribute_minutes(session: DbSession, meeting_id: int) -> uuid.UUID | None:
    """Issue the signed minutes to the invited member cities as a restricted bulletin, once;
    return the bulletin's public id (None when there is nothing to send or it was sent)."""
    meeting = get_by_id(session, meeting_id)
    if meeting.signed_at is None or meeting.minutes_bulletin_id is not None:
        return None
    addressed = _member_slugs(meeting)
    if not addressed:
        return None
    bulletin = bulletins.issue(
        session,
        _issuer(meeting, "distribute-minutes"),
        BulletinCreate(
            category=_category(session, meeting),
            area=meeting.organizer_city.name_zh,
            title=f"{MINUTES_TITLE}{meeting.title}"[:200],
            text=minutes_bulletin_text(session, meeting),
            addressed_cities=addressed,
            scope="restricted",
            receipt_deadline=utcnow() + MINUTES_RECEIPT_WITHIN,
            exercise=meeting.exercise,
        ),
    )
    meeting.minutes_bulletin_id = bulletin.public_id
    session.flush()
    audit.record(
        session,
        Actor.system("distribute-minutes"),
        "meeting.minutes_distributed",
        "meeting",
        meeting.id,
        after={"bulletin": str(bulletin.public_id), "addressed": list(addressed)},
        city_id=meeting.organizer_city_id,
    )
    return bulletin.public_id


def publish_public_part(session: DbSession, actor: Actor, public_id: uuid.UUID) -> uuid.UUID:
    """Publish the parts of the signed minutes marked public as a public bulletin, as the chair; once."""
    meeting = get(session, public_id)
    _require_chair(actor, meeting, "publish the public part of the minutes")
    if meeting.signed_at is None:
        raise Conflict("the minutes are not signed yet")
    if meeting.public_bulletin_id is not None:
        raise Conflict(f"the public part was already published as bulletin {meeting.public_bulletin_id}")
    revision = _signed_text(meeting)
    text = revision.public_part.strip() if revision is not None else ""
    if not text:
        raise InvalidInput("the signed minutes have no part marked public")
    addressed = _member_slugs(meeting)
    if not addressed:
        raise InvalidInput("the meeting has no other member city to address")
    bulletin = bulletins.issue(
        session,
        _issuer(meeting, actor.name),
        BulletinCreate(
            category=_category(session, meeting),
            area=meeting.organizer_city.name_zh,
            title=f"{PUBLIC_TITLE}{meeting.title}"[:200],
            text=text[:BULLETIN_TEXT_LIMIT],
            addressed_cities=addressed,
            scope="public",
            receipt_deadline=utcnow() + MINUTES_RECEIPT_WITHIN,
            exercise=meeting.exercise,
        ),
    )
    meeting.public_bulletin_id = bulletin.public_id
    session.flush()
    audit.record(
        session,
        actor,
        "meeting.public_part_published",
        "meeting",
        meeting.id,
        after={"bulletin": str(bulletin.public_id)},
    )
    return bulletin.public_id


# Schedules ----------------------------------------------------------------------------------------


def schedule_reminders(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for reminders to the cities that have not answered, one request per meeting and minute."""
    slot = int(now.timestamp()) // 60
    for meeting_id, public_id in unanswered_due(session, now):
        flow_requests.enqueue(
            session,
            REMIND_ANSWERS,
            key=f"{REMIND_ANSWERS}:{public_id}:{slot}",
            # The tick decided the reminders are due; a re-run judges by the same instant.
            parameters={"meeting_id": meeting_id, "as_of": now.isoformat()},
        )


INVITATION_RETRY_MINUTES = 5


def schedule_platform_retries(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for another round of the invitations a platform did not take, once per meeting and slot."""
    slot = int(now.timestamp()) // (60 * INVITATION_RETRY_MINUTES)
    for meeting_id, public_id, sequence in undelivered_to_platforms(session):
        flow_requests.enqueue(
            session,
            INVITE,
            key=f"{INVITE}:{public_id}:{sequence}:retry:{slot}",
            parameters={"meeting_id": meeting_id},
        )


def schedule_quorum(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for the quorum check of each called meeting whose start has come, once per meeting."""
    query = select(Meeting.id, Meeting.public_id).where(
        Meeting.status == CALLED, Meeting.starts_at <= now, Meeting.quorum_checked_at.is_(None)
    )
    for meeting_id, public_id in session.execute(query):
        flow_requests.enqueue(
            session, QUORUM, key=f"{QUORUM}:{public_id}", parameters={"meeting_id": meeting_id}
        )


def schedule_agenda(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for the agenda of each meeting whose agenda deadline has passed to be sent, once."""
    query = select(Meeting.id, Meeting.public_id).where(
        Meeting.status == CALLED,
        Meeting.agenda_deadline.is_not(None),
        Meeting.agenda_deadline <= now,
        Meeting.agenda_sent_at.is_(None),
    )
    for meeting_id, public_id in session.execute(query):
        flow_requests.enqueue(
            session, SEND_AGENDA, key=f"{SEND_AGENDA}:{public_id}", parameters={"meeting_id": meeting_id}
        )


def send_agenda(session: DbSession, meeting_id: int) -> bool:
    """Close submissions and send the agenda: the calendar shows the update (SEQUENCE raised); once."""
    meeting = get_by_id(session, meeting_id)
    if meeting.agenda_sent_at is not None or meeting.status != CALLED:
        return False
    meeting.agenda_sent_at = utcnow()
    meeting.sequence += 1
    meeting.updated_at = meeting.agenda_sent_at
    session.flush()
    # The invitees' calendars get the update (METHOD:REQUEST at the raised SEQUENCE).
    _request_delivery(session, meeting)
    audit.record(
        session,
        Actor.system("send-agenda"),
        "meeting.agenda_sent",
        "meeting",
        meeting.id,
        after={"items": [a.title for a in meeting.agenda_items]},
        city_id=meeting.organizer_city_id,
    )
    return True


# The regular conference ---------------------------------------------------------------------------


def bodies(session: DbSession) -> list[ConferenceBodyRow]:
    """Return the standing conference bodies, oldest first."""
    query = select(ConferenceBodyRow).options(selectinload(ConferenceBodyRow.rotation_events))
    return list(session.scalars(query.order_by(ConferenceBodyRow.id)))


def get_body(session: DbSession, public_id: uuid.UUID) -> ConferenceBodyRow:
    """Return a conference body by its public id, or fail."""
    body = session.scalar(select(ConferenceBodyRow).where(ConferenceBodyRow.public_id == public_id))
    if body is None:
        raise NotFound(f"no conference body {public_id}")
    return body


def body_contract(body: ConferenceBodyRow) -> ConferenceBody:
    """Return the body's definition as its contract."""
    return ConferenceBody.model_validate(body.definition)


def rotation_events(body: ConferenceBodyRow) -> list[rules.RotationEvent]:
    """Return the body's recorded skips and swaps as the rules see them."""
    events: list[rules.RotationEvent] = []
    for row in body.rotation_events:
        role = rules.RotationRole(row.role)
        if row.kind == "skip":
            events.append(rules.Skip(row.seq, row.city, row.reason, role))
        else:
            events.append(rules.Swap(row.seq, row.city, row.with_city or "", row.reason, role))
    return events


def create_body(session: DbSession, actor: Actor, data: ConferenceBody) -> ConferenceBodyRow:
    """Set up the standing conference (an administrator's or coordinator's task)."""
    if not (actor.is_admin or actor.role is Role.COORDINATOR):
        raise Forbidden("only administrators and coordinators set up the conference")
    cities.by_slugs(session, list(data.member_cities))
    body = ConferenceBodyRow(
        public_id=uuid.uuid4(),
        definition=data.model_dump(mode="json"),
        revision=0,
        last_created_seq=0,
        updated_at=utcnow(),
    )
    session.add(body)
    session.flush()
    audit.record(session, actor, "conference.created", "conference_body", body.id, after=body.definition)
    return body


def record_rotation_change(
    session: DbSession, actor: Actor, body_id: int, event: rules.RotationEvent
) -> RotationEventRow:
    """Record a skip or swap with its reason, if the rotation still works out with it."""
    body = session.get(ConferenceBodyRow, body_id)
    if body is None:
        raise NotFound(f"no conference body {body_id}")
    _require_conference_steward(session, actor, body, "change the rotation")
    if event.seq <= body.last_created_seq:
        raise Conflict(f"meeting {event.seq} is already created; its host and chair are set")
    definition = body_contract(body)
    events = [*rotation_events(body), event]
    rules.body_turns(
        definition, events, after_seq=body.last_created_seq, count=event.seq + 1 - body.last_created_seq
    )
    row = RotationEventRow(
        body=body,
        kind="skip" if isinstance(event, rules.Skip) else "swap",
        seq=event.seq,
        role=event.role.value,
        city=event.city,
        with_city=getattr(event, "with_city", None),
        reason=event.reason,
        recorded_at=utcnow(),
        recorded_by=actor.name,
    )
    session.add(row)
    body.revision += 1
    body.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        f"conference.rotation_{row.kind}",
        "conference_body",
        body.id,
        after={
            "seq": row.seq,
            "role": row.role,
            "city": row.city,
            "with": row.with_city,
            "reason": row.reason,
        },
    )
    return row


def _require_conference_steward(session: DbSession, actor: Actor, body: ConferenceBodyRow, what: str) -> None:
    """Let administrators and the coordinators of the body's member cities through, no one else."""
    if actor.is_admin:
        return
    members = set(body_contract(body).member_cities)
    if actor.role is not Role.COORDINATOR or actor.city_id is None:
        raise Forbidden(f"only administrators and the member cities' coordinators {what}")
    # A coordinator from outside the body does not run it.
    if cities.by_id(session, actor.city_id).slug not in members:
        raise Forbidden(f"only administrators and the member cities' coordinators {what}")


def can_steward(session: DbSession, actor: Actor, body: ConferenceBodyRow) -> bool:
    """Whether the actor may edit the body's definition and record skips and swaps."""
    try:
        _require_conference_steward(session, actor, body, "run the conference")
    except Forbidden:
        return False
    return True


def update_body(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: ConferenceBody
) -> ConferenceBodyRow | None:
    """Change the conference's definition from the next meeting not created yet; None if nothing changed.

    `data.first_host` and `data.first_meeting_on` name the host and the day of that next meeting
    (the page offers what the plan gives now). The meetings created keep their hosts and dates;
    the rotation restarts there only when the order, the members or that host change, so a swap
    recorded earlier still owes its turn when only the rhythm or the deadlines change. The skips and
    swaps recorded for later meetings must still fit the new rotation, or the edit is refused.
    """
    body = get_body(session, public_id)
    _require_conference_steward(session, actor, body, "edit the conference")
    before = body_contract(body)
    events = rotation_events(body)
    following = body.last_created_seq + 1
    (now_planned,) = rules.plan(before, events, after_seq=body.last_created_seq, count=1)
    cities.by_slugs(session, list(data.member_cities))
    rotation_kept = (
        data.rotation_order == before.rotation_order
        and data.member_cities == before.member_cities
        and data.first_host == now_planned.host
    )
    dates_kept = (
        data.rhythm_months == before.rhythm_months
        and data.meeting_time == before.meeting_time
        and data.first_meeting_on == now_planned.starts_at.date()
    )
    changes: dict[str, object] = {}
    if rotation_kept:
        changes |= {"first_host": before.first_host, "rotation_from_seq": before.rotation_from_seq}
    else:
        changes |= {"rotation_from_seq": following}
    if dates_kept:
        changes |= {"first_meeting_on": before.first_meeting_on, "dates_from_seq": before.dates_from_seq}
    else:
        changes |= {"dates_from_seq": following}
    after = ConferenceBody.model_validate({**data.model_dump(), **changes})
    if after == before:
        return None
    # Fails with the reason when a recorded skip or swap no longer fits, or a date does not exist.
    next_ten = rules.plan(after, events, after_seq=body.last_created_seq, count=10)
    if next_ten[0].starts_at <= utcnow():
        raise InvalidInput(
            f"meeting {following} would start in the past ({next_ten[0].starts_at:%Y-%m-%d %H:%M})",
            reason="starts_in_past",
        )
    body.definition = after.model_dump(mode="json")
    body.revision += 1
    body.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "conference.updated",
        "conference_body",
        body.id,
        before=before.model_dump(mode="json"),
        after={**body.definition, "from_seq": following},
    )
    return body


def upcoming_turns(body: ConferenceBodyRow, count: int = 10) -> list[rules.PlannedMeeting]:
    """Return the next meetings of the body with their dates, hosts and chairs, from the data."""
    return rules.plan(
        body_contract(body), rotation_events(body), after_seq=body.last_created_seq, count=count
    )


def schedule_planning(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for the next regular meeting of each body once its creation time (30 days ahead) has come."""
    for body in session.scalars(select(ConferenceBodyRow)):
        seq = rules.seq_to_create(body_contract(body), now, last_created_seq=body.last_created_seq)
        if seq is not None:
            flow_requests.enqueue(
                session,
                PLAN,
                key=f"{PLAN}:{body.public_id}:{seq}",
                parameters={"body_id": body.id, "seq": seq},
            )


def create_regular_meeting(session: DbSession, body_id: int, seq: int) -> Meeting | None:
    """Create meeting `seq` of the body with its host, chair, invitations and carried-over items; once."""
    body = session.get(ConferenceBodyRow, body_id)
    if body is None:
        raise NotFound(f"no conference body {body_id}")
    if seq != body.last_created_seq + 1:
        return None
    definition = body_contract(body)
    planned = rules.plan(definition, rotation_events(body), after_seq=seq - 1, count=1)[0]
    host = cities.by_slug(session, planned.host)
    chair = cities.by_slug(session, planned.chair)
    now = utcnow()
    meeting = Meeting(
        public_id=uuid.uuid4(),
        kind=MeetingKind.CONFERENCE.value,
        status=CALLED,
        body_id=body.id,
        seq=seq,
        title=f"{definition.name}（第{seq}次）"[:200],
        starts_at=planned.starts_at,
        ends_at=planned.ends_at,
        location="",
        organizer_city_id=host.id,
        chair_city_id=chair.id,
        host_city_id=host.id,
        quorum=definition.quorum.model_dump(),
        expert_specialities=[],
        agenda_deadline=planned.agenda_deadline,
        sequence=0,
        created_at=now,
        called_at=now,
        updated_at=now,
    )
    session.add(meeting)
    session.flush()
    _invite(
        session,
        meeting,
        {c.id: "member" for c in cities.by_slugs(session, list(definition.member_cities))},
    )
    _carry_over(session, body, meeting)
    body.last_created_seq = seq
    body.revision += 1
    body.updated_at = now
    session.flush()
    planner = Actor.system("plan-conference")
    audit.record(
        session,
        planner,
        "meeting.created",
        "meeting",
        meeting.id,
        after={**_snapshot(meeting), "seq": seq, "host": host.slug},
        city_id=host.id,
    )
    _put_on_desks(session, planner, meeting, now)
    _request_delivery(session, meeting)
    return meeting


def _carry_over(session: DbSession, body: ConferenceBodyRow, meeting: Meeting) -> None:
    """Put the body's still-open action items on the new meeting's agenda, counted."""
    held = list(
        session.scalars(
            select(Meeting.starts_at).where(
                Meeting.body_id == body.id, Meeting.id != meeting.id, Meeting.status != CANCELLED
            )
        )
    )
    context_ids = set(session.scalars(select(Meeting.public_id).where(Meeting.body_id == body.id)))
    items = [i for i in action_items.open_items_of(session, origin=ORIGIN) if i.context_id in context_ids]
    by_id = {str(i.public_id): i for i in items}
    for carry in action_rules.carry_overs(
        [action_items.to_record(i) for i in items], meeting.starts_at, held
    ):
        item = by_id[carry.item.id]
        item.carried_over = carry.times
        session.add(
            AgendaItem(
                meeting=meeting,
                city_id=item.owner_city_id,
                title=item.title,
                summary=item.detail,
                submitted_at=meeting.created_at,
                action_item_id=item.id,
                carried_over=carry.times,
            )
        )


# Calendar -----------------------------------------------------------------------------------------

_STATUS = {
    PROPOSED: calendar.MeetingStatus.TENTATIVE,
    CALLED: calendar.MeetingStatus.CONFIRMED,
    OPENED: calendar.MeetingStatus.CONFIRMED,
    CLOSED: calendar.MeetingStatus.CONFIRMED,
    CANCELLED: calendar.MeetingStatus.CANCELLED,
}
_PARTSTAT = {
    None: calendar.Partstat.NEEDS_ACTION,
    Answer.ACCEPT.value: calendar.Partstat.ACCEPTED,
    Answer.DECLINE.value: calendar.Partstat.DECLINED,
    Answer.DELEGATE.value: calendar.Partstat.DELEGATED,
}


def calendar_meeting(meeting: Meeting, *, with_answers: bool = True) -> calendar.CalendarMeeting:
    """Return the meeting as the calendar shows it (an invitation shows it without the answers)."""

    def partstat(answer: str | None) -> calendar.Partstat:
        return (
            _PARTSTAT.get(answer, calendar.Partstat.NEEDS_ACTION)
            if with_answers
            else calendar.Partstat.NEEDS_ACTION
        )

    return calendar.CalendarMeeting(
        public_id=meeting.public_id,
        sequence=meeting.sequence,
        title=meeting.title,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        organizer_city=meeting.organizer_city.slug,
        chair_city=meeting.chair_city.slug,
        invitees=tuple(
            calendar.Invitee(i.city.slug, partstat=partstat(i.answer)) for i in meeting.invitations
        ),
        experts=tuple(
            calendar.ExpertInvitee(e.public_id, e.name, e.city.slug, partstat=partstat(e.answer))
            for e in meeting.experts
        ),
        updated_at=meeting.updated_at,
        status=_STATUS[meeting.status],
        location=meeting.location,
        video_link=meeting.video_link,
    )


def _calendar_meetings(session: DbSession, city: City | None) -> list[calendar.CalendarMeeting]:
    """Return the feed's meetings as the calendar shows them, read as plain rows.

    The same as `calendar_meeting` of each meeting, without building ORM objects: a feed of five
    years holds thousands of invitations, and reading them as tuples takes a fraction of the time.
    """
    chosen = select(Meeting.id).where(Meeting.status != PROPOSED)
    if city is not None:
        invited = select(Invitation.meeting_id).where(Invitation.city_id == city.id)
        chosen = chosen.where(Meeting.id.in_(invited) | (Meeting.chair_city_id == city.id))
    ids = chosen
    slugs = {c.id: c.slug for c in cities.all_cities(session)}
    invitees: dict[int, list[calendar.Invitee]] = {}
    for meeting_id, city_id, answered in session.execute(
        select(Invitation.meeting_id, Invitation.city_id, Invitation.answer)
        .where(Invitation.meeting_id.in_(ids))
        .order_by(Invitation.meeting_id, Invitation.city_id)
    ):
        invitees.setdefault(meeting_id, []).append(
            calendar.Invitee(slugs[city_id], partstat=_PARTSTAT.get(answered, calendar.Partstat.NEEDS_ACTION))
        )
    experts: dict[int, list[calendar.ExpertInvitee]] = {}
    for meeting_id, public_id, name, city_id, answered in session.execute(
        select(
            ExpertInvitation.meeting_id,
            ExpertInvitation.public_id,
            ExpertInvitation.name,
            ExpertInvitation.city_id,
            ExpertInvitation.answer,
        )
        .where(ExpertInvitation.meeting_id.in_(ids))
        .order_by(ExpertInvitation.meeting_id, ExpertInvitation.id)
    ):
        experts.setdefault(meeting_id, []).append(
            calendar.ExpertInvitee(
                public_id,
                name,
                slugs[city_id],
                partstat=_PARTSTAT.get(answered, calendar.Partstat.NEEDS_ACTION),
            )
        )
    rows = session.execute(
        select(
            Meeting.id,
            Meeting.public_id,
            Meeting.sequence,
            Meeting.title,
            Meeting.starts_at,
            Meeting.ends_at,
            Meeting.organizer_city_id,
            Meeting.chair_city_id,
            Meeting.updated_at,
            Meeting.status,
            Meeting.location,
            Meeting.video_link,
        )
        .where(Meeting.id.in_(ids))
        .order_by(Meeting.starts_at, Meeting.id)
    )
    return [
        calendar.CalendarMeeting(
            public_id=row.public_id,
            sequence=row.sequence,
            title=row.title,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            organizer_city=slugs[row.organizer_city_id],
            chair_city=slugs[row.chair_city_id],
            invitees=tuple(invitees.get(row.id, ())),
            updated_at=row.updated_at,
            status=_STATUS[row.status],
            location=row.location,
            video_link=row.video_link,
            experts=tuple(experts.get(row.id, ())),
        )
        for row in rows
    ]


def calendar_feed(
    session: DbSession,
    city: City | None = None,
    *,
    with_action_items: bool = True,
    events: Iterable[calendar.CalendarMeeting] = (),
) -> bytes:
    """Render the feed of every meeting (not proposals), or of one city's, with its action items;
    `events` are other dates of the same cities shown with them (drills, from their capability)."""
    meetings = sorted(_calendar_meetings(session, city) + list(events), key=lambda m: m.starts_at)
    todos: list[calendar.CalendarActionItem] = []
    if with_action_items:
        items = (
            action_items.owned_by(session, city.id, open_only=False)
            if city is not None
            else action_items.open_items_of(session, origin=ORIGIN)
        )
        todos = [
            calendar.CalendarActionItem(
                public_id=i.public_id,
                sequence=i.sequence,
                title=i.title,
                owner_city=i.owner_city.slug,
                chair_city=i.chair_city.slug,
                due_on=i.due_on,
                state=ActionItemState(i.state),
                updated_at=i.updated_at,
                meeting_id=i.context_id,
                closed_at=i.closed_at,
                carried_over=i.carried_over,
            )
            for i in items
        ]
    name = f"联席会商 {city.name_zh}" if city is not None else "淮海联席会商"
    return calendar.feed(meetings, todos, name=name)


# Annual assessment --------------------------------------------------------------------------------


def assessment(session: DbSession, year: int, now: datetime | None = None) -> list[rules.CityYear]:
    """Return each city's figures for the year: meetings invited and attended, agenda on time, actions."""
    meetings = session.scalars(select(Meeting).where(Meeting.status != PROPOSED)).all()
    records = []
    agenda: list[rules.AgendaRecord] = []
    for meeting in meetings:
        invited = frozenset(i.city.slug for i in meeting.invitations)
        attended = frozenset(a.city.slug for a in meeting.attendance if a.present) or frozenset(
            represented(meeting) if meeting.status in (OPENED, CLOSED) else ()
        )
        records.append(
            rules.MeetingRecord(
                meeting.starts_at, invited, attended, meeting.status == CANCELLED, meeting.exercise
            )
        )
        if meeting.agenda_deadline is not None:
            agenda.extend(
                rules.AgendaRecord(a.city.slug, a.submitted_at, meeting.agenda_deadline)
                for a in meeting.agenda_items
                if a.action_item_id is None
            )
    actions = [
        rules.ActionRecord(i.owner_city.slug, i.due_on, i.closed_at)
        for i in action_items.all_of(session, origin=ORIGIN)
    ]
    return rules.assessment(
        year,
        [c.slug for c in cities.all_cities(session)],
        meetings=records,
        agenda_items=agenda,
        action_items=actions,
        now=now or utcnow(),
    )


def exercise_calls(
    session: DbSession, city_ids: list[int], since: datetime, until: datetime | None = None
) -> list[tuple[int, datetime, str]]:
    """Return the exercise consultations the cities called from `since` (to `until`): (city id,
    when called, public id), oldest first; a drill reads them as its players' actions."""
    query = select(Meeting.organizer_city_id, Meeting.called_at, Meeting.public_id).where(
        Meeting.exercise.is_(True),
        Meeting.organizer_city_id.in_(city_ids),
        Meeting.called_at.is_not(None),
        Meeting.called_at >= since,
    )
    if until is not None:
        query = query.where(Meeting.called_at <= until)
    rows = session.execute(query.order_by(Meeting.called_at, Meeting.id))
    return [(city_id, at, str(public_id)) for city_id, at, public_id in rows if at is not None]
