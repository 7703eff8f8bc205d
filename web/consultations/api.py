"""API for consultations: call, answer, minutes, resolutions, signing, action items, calendar feeds."""

from __future__ import annotations

import csv
import io
import uuid

from flask import Blueprint, Response, current_app, url_for
from flask.typing import ResponseReturnValue

from contracts.consultations import (
    ActionItem,
    ActionItemClose,
    ActionItemProgress,
    ActionItemReopen,
    AgendaItemSubmission,
    AttendanceRoll,
    ConsultationCall,
    InvitationAnswer,
    MinutesRevision,
    Resolution,
)
from hub.action_items import services as action_items
from hub.consultations import rules as consultation_rules
from hub.consultations import services as consultations
from hub.consultations.models import Meeting
from hub.drills import services as drills
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.errors import NotFound
from web.api.models import ErrorBody
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.consultations.schemas import (
    AgendaItemOut,
    AnswerOut,
    AttendanceOut,
    ExpertAnswerOut,
    MeetingList,
    MeetingOut,
    MinutesSaved,
    MinutesUnchanged,
    QuorumOut,
    ResolutionOut,
)
from web.kick import kick_flows

bp = Blueprint("consultations_api", __name__, url_prefix="/api/v1")

ICS = "text/calendar; charset=utf-8"
TAGS = ("consultations",)


def _meeting(meeting: Meeting) -> MeetingOut:
    quorum = consultations.quorum_now(meeting)
    # Stored text (kind, status, answers) is checked against the model when it is built.
    return MeetingOut.model_validate(
        dict(
            id=meeting.public_id,
            kind=meeting.kind,
            status=meeting.status,
            title=meeting.title,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            video_link=meeting.video_link,
            organizer_city=meeting.organizer_city.slug,
            chair_city=meeting.chair_city.slug,
            sequence=meeting.sequence,
            quorum=QuorumOut(met=quorum.met, represented=quorum.represented, needed=quorum.needed),
            quorum_met_at_start=meeting.quorum_met,
            signed_revision=meeting.signed_revision,
            minutes_bulletin_id=meeting.minutes_bulletin_id,
            public_bulletin_id=meeting.public_bulletin_id,
            invitations=[
                dict(
                    city=i.city.slug,
                    delivered_at=i.delivered_at,
                    answer=i.answer,
                    delegate_name=i.delegate_name,
                    answered_at=i.answered_at,
                    reminded=i.reminded_at is not None,
                    platform_sequence=i.platform_sequence,
                    platform_delivered_at=i.platform_delivered_at,
                )
                for i in meeting.invitations
            ],
            experts=[
                dict(
                    id=e.public_id,
                    resource_id=e.resource_id,
                    city=e.city.slug,
                    speciality=e.speciality,
                    name=e.name,
                    delivered_at=e.delivered_at,
                    answer=e.answer,
                    delegate_name=e.delegate_name,
                    answered_at=e.answered_at,
                    platform_sequence=e.platform_sequence,
                    platform_delivered_at=e.platform_delivered_at,
                )
                for e in meeting.experts
            ],
        )
    )


@bp.get("/consultations")
@api_auth
@operation(tags=TAGS, HTTP_200=MeetingList)
def list_consultations() -> ResponseReturnValue:
    """List the meetings the caller's city takes part in."""
    meetings = consultations.visible_list(db.session, current_actor())
    return MeetingList(items=[_meeting(m) for m in meetings]).model_dump(mode="json")


@bp.post("/consultations")
@api_auth
@operation(json=ConsultationCall, tags=TAGS, HTTP_201=(MeetingOut, "Called; invitations queued"))
def call_consultation(body: ConsultationCall) -> ResponseReturnValue:
    """Call a consultation for the caller's city."""
    meeting = consultations.call(db.session, current_actor(), body)
    db.session.commit()
    kick_flows(current_app)
    location = url_for("consultations_api.get_consultation", public_id=meeting.public_id)
    return _meeting(meeting).model_dump(mode="json"), 201, {"Location": location}


@bp.get("/consultations/<uuid:public_id>")
@api_auth
@operation(tags=TAGS, HTTP_200=MeetingOut)
def get_consultation(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return one meeting with its invitations and answers (404 to cities not taking part)."""
    meeting = consultations.get_for(db.session, current_actor(), public_id)
    return _meeting(meeting).model_dump(mode="json")


@bp.post("/consultations/<uuid:public_id>/answer")
@api_auth
@operation(
    json=InvitationAnswer,
    tags=TAGS,
    HTTP_200=(AnswerOut, "Recorded"),
    HTTP_409=(ErrorBody, "The meeting no longer takes answers"),
)
def answer_invitation(public_id: uuid.UUID, body: InvitationAnswer) -> ResponseReturnValue:
    """Answer the caller's city's invitation."""
    invitation = consultations.answer(db.session, current_actor(), public_id, body)
    db.session.commit()
    answer = AnswerOut.model_validate(
        {"city": invitation.city.slug, "answer": invitation.answer, "delegate_name": invitation.delegate_name}
    )
    return answer.model_dump(mode="json")


@bp.post("/consultations/<uuid:public_id>/experts/<uuid:invitation_id>/answer")
@api_auth
@operation(
    json=InvitationAnswer,
    tags=TAGS,
    HTTP_200=(ExpertAnswerOut, "Recorded"),
    HTTP_409=(ErrorBody, "The meeting no longer takes answers"),
)
def answer_for_expert(
    public_id: uuid.UUID, invitation_id: uuid.UUID, body: InvitationAnswer
) -> ResponseReturnValue:
    """Answer for an expert of the caller's city's registry invited to the meeting."""
    invitation = consultations.answer_for_expert(db.session, current_actor(), public_id, invitation_id, body)
    db.session.commit()
    answer = ExpertAnswerOut.model_validate(
        {
            "id": invitation.public_id,
            "name": invitation.name,
            "answer": invitation.answer,
            "delegate_name": invitation.delegate_name,
        }
    )
    return answer.model_dump(mode="json")


@bp.post("/consultations/<uuid:public_id>/call")
@api_auth
@operation(
    tags=TAGS,
    HTTP_200=(MeetingOut, "Called; invitations queued"),
    HTTP_409=(ErrorBody, "The consultation is not a proposal any more"),
)
def call_proposal(public_id: uuid.UUID) -> ResponseReturnValue:
    """Call a consultation the hub proposed to the caller's city."""
    meeting = consultations.confirm_proposal(db.session, current_actor(), public_id)
    db.session.commit()
    kick_flows(current_app)
    return _meeting(meeting).model_dump(mode="json")


@bp.post("/consultations/<uuid:public_id>/agenda")
@api_auth
@operation(
    json=AgendaItemSubmission,
    tags=TAGS,
    HTTP_201=(AgendaItemOut, "Added to the agenda"),
    HTTP_409=(ErrorBody, "The meeting is over, or agenda submissions are closed"),
)
def submit_agenda_item(public_id: uuid.UUID, body: AgendaItemSubmission) -> ResponseReturnValue:
    """Add the caller's city's agenda item (before the agenda deadline)."""
    item = consultations.submit_agenda_item(db.session, current_actor(), public_id, body)
    db.session.commit()
    return AgendaItemOut(title=item.title, submitted_at=item.submitted_at).model_dump(mode="json"), 201


@bp.put("/consultations/<uuid:public_id>/attendance")
@api_auth
@operation(json=AttendanceRoll, tags=TAGS, HTTP_200=(AttendanceOut, "Recorded"))
def record_attendance(public_id: uuid.UUID, body: AttendanceRoll) -> ResponseReturnValue:
    """Record the roll-call as the chair: `{"present": ["xuzhou", ...]}`."""
    rows = consultations.record_attendance(db.session, current_actor(), public_id, list(body.present))
    db.session.commit()
    return AttendanceOut(present=sorted(r.city.slug for r in rows if r.present)).model_dump(mode="json")


@bp.post("/consultations/<uuid:public_id>/minutes")
@api_auth
@operation(
    json=MinutesRevision,
    tags=TAGS,
    HTTP_201=(MinutesSaved, "Saved as a new revision"),
    HTTP_200=(MinutesUnchanged, "Nothing changed; no revision added"),
    HTTP_409=(ErrorBody, "The minutes are signed, or a newer revision was saved meanwhile"),
)
def save_minutes(public_id: uuid.UUID, body: MinutesRevision) -> ResponseReturnValue:
    """Save the minutes: 201 with the new revision, 200 when nothing changed, 409 once signed."""
    row = consultations.save_minutes(db.session, current_actor(), public_id, body)
    db.session.commit()
    if row is None:
        return MinutesUnchanged(revision=None).model_dump(mode="json"), 200
    return MinutesSaved(revision=row.number, author=row.author, at=row.at).model_dump(mode="json"), 201


@bp.post("/consultations/<uuid:public_id>/resolutions")
@api_auth
@operation(
    json=Resolution,
    tags=TAGS,
    HTTP_201=(ResolutionOut, "Recorded, with the action items it opened"),
    HTTP_409=(ErrorBody, "The minutes are signed; the decisions are final"),
)
def add_resolution(public_id: uuid.UUID, body: Resolution) -> ResponseReturnValue:
    """Record a resolution as the chair, with the action items it opens."""
    row, opened = consultations.add_resolution(db.session, current_actor(), public_id, body)
    db.session.commit()
    resolution = ResolutionOut.model_validate(
        {
            "number": row.number,
            "outcome": row.outcome,
            "action_items": [action_items.to_contract(i) for i in opened],
        }
    )
    return resolution.model_dump(mode="json"), 201


@bp.post("/consultations/<uuid:public_id>/sign")
@api_auth
@operation(
    tags=TAGS,
    HTTP_200=(MeetingOut, "Signed; the minutes are frozen"),
    HTTP_409=(ErrorBody, "The minutes are already signed"),
)
def sign_minutes(public_id: uuid.UUID) -> ResponseReturnValue:
    """Sign the minutes as the chair; they are frozen from then on."""
    meeting = consultations.sign(db.session, current_actor(), public_id)
    db.session.commit()
    kick_flows(current_app)
    return _meeting(meeting).model_dump(mode="json")


@bp.post("/consultations/<uuid:public_id>/publish")
@api_auth
@operation(
    tags=TAGS,
    HTTP_201=(MeetingOut, "Published: public_bulletin_id names the public bulletin"),
    HTTP_409=(ErrorBody, "The minutes are not signed, or their public part was already published"),
)
def publish_public_part(public_id: uuid.UUID) -> ResponseReturnValue:
    """Publish the parts of the signed minutes marked public as a public bulletin, as the chair."""
    consultations.publish_public_part(db.session, current_actor(), public_id)
    db.session.commit()
    kick_flows(current_app)
    meeting = consultations.get(db.session, public_id)
    return _meeting(meeting).model_dump(mode="json"), 201


@bp.post("/action-items/<uuid:public_id>/progress")
@api_auth
@operation(
    json=ActionItemProgress,
    tags=TAGS,
    HTTP_200=(ActionItem, "Noted"),
    HTTP_409=(ErrorBody, "The action item is closed"),
)
def action_item_progress(public_id: uuid.UUID, body: ActionItemProgress) -> ResponseReturnValue:
    """Add the owner city's progress note."""
    item = action_items.add_progress(db.session, current_actor(), public_id, body)
    db.session.commit()
    return action_items.to_contract(item).model_dump(mode="json")


@bp.post("/action-items/<uuid:public_id>/close")
@api_auth
@operation(
    json=ActionItemClose,
    tags=TAGS,
    HTTP_200=(ActionItem, "Closed"),
    HTTP_409=(ErrorBody, "The action item is already closed"),
)
def action_item_close(public_id: uuid.UUID, body: ActionItemClose) -> ResponseReturnValue:
    """Close an action item as its owner city, with evidence."""
    item = action_items.close(db.session, current_actor(), public_id, body)
    db.session.commit()
    return action_items.to_contract(item).model_dump(mode="json")


@bp.post("/action-items/<uuid:public_id>/reopen")
@api_auth
@operation(
    json=ActionItemReopen,
    tags=TAGS,
    HTTP_200=(ActionItem, "Reopened"),
    HTTP_409=(ErrorBody, "The action item is not closed"),
)
def action_item_reopen(public_id: uuid.UUID, body: ActionItemReopen) -> ResponseReturnValue:
    """Reopen a closed action item as the chair city."""
    item = action_items.reopen(db.session, current_actor(), public_id, body)
    db.session.commit()
    return action_items.to_contract(item).model_dump(mode="json")


@bp.get("/consultations/calendar.ics")
@api_auth
@operation(tags=TAGS, HTTP_200=(None, "iCalendar (RFC 5545)"), xml_answer=("200", "text/calendar"))
def calendar_feed() -> ResponseReturnValue:
    """Return every meeting (cancelled ones marked so), the scheduled drills and the open action
    items as iCalendar."""
    feed = consultations.calendar_feed(db.session, events=drills.calendar_events(db.session))
    return Response(feed, content_type=ICS)


@bp.get("/consultations/calendar/<city>.ics")
@api_auth
@operation(tags=TAGS, HTTP_200=(None, "iCalendar (RFC 5545)"), xml_answer=("200", "text/calendar"))
def city_calendar_feed(city: str) -> ResponseReturnValue:
    """Return one city's meetings, the drills it takes part in and its action items as iCalendar."""
    found = city_service.by_slug(db.session, city)
    feed = consultations.calendar_feed(db.session, found, events=drills.calendar_events(db.session, found))
    return Response(feed, content_type=ICS)


@bp.get("/consultations/assessment/<int:year>.csv")
@api_auth
@operation(tags=TAGS, HTTP_200=(None, "One row per city"), xml_answer=("200", "text/csv"))
def assessment_csv(year: int) -> ResponseReturnValue:
    """Return the year's figures per city for the annual assessment, as CSV."""
    if not 2000 <= year <= 2100:
        raise NotFound(f"no assessment for {year}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=consultation_rules.CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(consultation_rules.assessment_rows(consultations.assessment(db.session, year)))
    return Response(
        buffer.getvalue(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename=consultations-assessment-{year}.csv"},
    )
