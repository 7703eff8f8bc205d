"""API for consultations: call, answer, minutes, resolutions, signing, action items, calendar feeds."""

from __future__ import annotations

import csv
import io
import uuid

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from contracts.consultations import (
    ActionItemClose,
    ActionItemProgress,
    ActionItemReopen,
    AgendaItemSubmission,
    ConsultationCall,
    InvitationAnswer,
    MinutesRevision,
    Resolution,
)
from hub.action_items import services as action_items
from hub.consultations import rules as consultation_rules
from hub.consultations import services as consultations
from hub.consultations.models import Meeting
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.errors import InvalidInput, NotFound
from web.api import params
from web.auth import api_auth, current_actor
from web.kick import kick_flows

bp = Blueprint("consultations_api", __name__, url_prefix="/api/v1")

ICS = "text/calendar; charset=utf-8"


def _meeting_json(meeting: Meeting) -> dict[str, object]:
    quorum = consultations.quorum_now(meeting)
    return {
        "id": str(meeting.public_id),
        "kind": meeting.kind,
        "status": meeting.status,
        "title": meeting.title,
        "starts_at": meeting.starts_at.isoformat(),
        "ends_at": meeting.ends_at.isoformat(),
        "video_link": meeting.video_link,
        "organizer_city": meeting.organizer_city.slug,
        "chair_city": meeting.chair_city.slug,
        "sequence": meeting.sequence,
        "quorum": {"met": quorum.met, "represented": quorum.represented, "needed": quorum.needed},
        "quorum_met_at_start": meeting.quorum_met,
        "signed_revision": meeting.signed_revision,
        "invitations": [
            {
                "city": i.city.slug,
                "delivered_at": i.delivered_at.isoformat() if i.delivered_at else None,
                "answer": i.answer,
                "delegate_name": i.delegate_name,
                "answered_at": i.answered_at.isoformat() if i.answered_at else None,
                "reminded": i.reminded_at is not None,
            }
            for i in meeting.invitations
        ],
    }


@bp.get("/consultations")
@api_auth
def list_consultations() -> ResponseReturnValue:
    """List the meetings the caller's city takes part in."""
    return jsonify(items=[_meeting_json(m) for m in consultations.visible_list(db.session, current_actor())])


@bp.post("/consultations")
@api_auth
def call_consultation() -> ResponseReturnValue:
    """Call a consultation for the caller's city."""
    meeting = consultations.call(db.session, current_actor(), params.json_body(ConsultationCall))
    db.session.commit()
    kick_flows(current_app)
    location = url_for("consultations_api.get_consultation", public_id=meeting.public_id)
    return jsonify(_meeting_json(meeting)), 201, {"Location": location}


@bp.get("/consultations/<uuid:public_id>")
@api_auth
def get_consultation(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return one meeting with its invitations and answers (404 to cities not taking part)."""
    return jsonify(_meeting_json(consultations.get_for(db.session, current_actor(), public_id)))


@bp.post("/consultations/<uuid:public_id>/answer")
@api_auth
def answer_invitation(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer the caller's city's invitation."""
    data = params.json_body(InvitationAnswer)
    invitation = consultations.answer(db.session, current_actor(), public_id, data)
    db.session.commit()
    return jsonify(
        city=invitation.city.slug, answer=invitation.answer, delegate_name=invitation.delegate_name
    )


@bp.post("/consultations/<uuid:public_id>/call")
@api_auth
def call_proposal(public_id: uuid.UUID) -> ResponseReturnValue:
    """Call a consultation the hub proposed to the caller's city."""
    meeting = consultations.confirm_proposal(db.session, current_actor(), public_id)
    db.session.commit()
    kick_flows(current_app)
    return jsonify(_meeting_json(meeting))


@bp.post("/consultations/<uuid:public_id>/agenda")
@api_auth
def submit_agenda_item(public_id: uuid.UUID) -> ResponseReturnValue:
    """Add the caller's city's agenda item (before the agenda deadline)."""
    item = consultations.submit_agenda_item(
        db.session, current_actor(), public_id, params.json_body(AgendaItemSubmission)
    )
    db.session.commit()
    return jsonify(title=item.title, submitted_at=item.submitted_at.isoformat()), 201


@bp.put("/consultations/<uuid:public_id>/attendance")
@api_auth
def record_attendance(public_id: uuid.UUID) -> ResponseReturnValue:
    """Record the roll-call as the chair: `{"present": ["xuzhou", ...]}`."""
    body = request.get_json(silent=True)
    present = body.get("present") if isinstance(body, dict) else None
    if not isinstance(present, list) or not all(isinstance(city, str) for city in present):
        raise InvalidInput('send {"present": [city slugs]}')
    rows = consultations.record_attendance(db.session, current_actor(), public_id, present)
    db.session.commit()
    return jsonify(present=sorted(r.city.slug for r in rows if r.present))


@bp.post("/consultations/<uuid:public_id>/minutes")
@api_auth
def save_minutes(public_id: uuid.UUID) -> ResponseReturnValue:
    """Save the minutes: 201 with the new revision, 200 when nothing changed, 409 once signed."""
    row = consultations.save_minutes(
        db.session, current_actor(), public_id, params.json_body(MinutesRevision)
    )
    db.session.commit()
    if row is None:
        return jsonify(revision=None), 200
    return jsonify(revision=row.number, author=row.author, at=row.at.isoformat()), 201


@bp.post("/consultations/<uuid:public_id>/resolutions")
@api_auth
def add_resolution(public_id: uuid.UUID) -> ResponseReturnValue:
    """Record a resolution as the chair, with the action items it opens."""
    row, opened = consultations.add_resolution(
        db.session,
        current_actor(),
        public_id,
        params.json_body(Resolution),
    )
    db.session.commit()
    items = [action_items.to_contract(i).model_dump(mode="json") for i in opened]
    return jsonify(number=row.number, outcome=row.outcome, action_items=items), 201


@bp.post("/consultations/<uuid:public_id>/sign")
@api_auth
def sign_minutes(public_id: uuid.UUID) -> ResponseReturnValue:
    """Sign the minutes as the chair; they are frozen from then on."""
    meeting = consultations.sign(db.session, current_actor(), public_id)
    db.session.commit()
    return jsonify(_meeting_json(meeting))


@bp.post("/action-items/<uuid:public_id>/progress")
@api_auth
def action_item_progress(public_id: uuid.UUID) -> ResponseReturnValue:
    """Add the owner city's progress note."""
    item = action_items.add_progress(
        db.session, current_actor(), public_id, params.json_body(ActionItemProgress)
    )
    db.session.commit()
    return jsonify(action_items.to_contract(item).model_dump(mode="json"))


@bp.post("/action-items/<uuid:public_id>/close")
@api_auth
def action_item_close(public_id: uuid.UUID) -> ResponseReturnValue:
    """Close an action item as its owner city, with evidence."""
    item = action_items.close(db.session, current_actor(), public_id, params.json_body(ActionItemClose))
    db.session.commit()
    return jsonify(action_items.to_contract(item).model_dump(mode="json"))


@bp.post("/action-items/<uuid:public_id>/reopen")
@api_auth
def action_item_reopen(public_id: uuid.UUID) -> ResponseReturnValue:
    """Reopen a closed action item as the chair city."""
    item = action_items.reopen(db.session, current_actor(), public_id, params.json_body(ActionItemReopen))
    db.session.commit()
    return jsonify(action_items.to_contract(item).model_dump(mode="json"))


@bp.get("/consultations/calendar.ics")
@api_auth
def calendar_feed() -> ResponseReturnValue:
    """Return every meeting (cancelled ones marked so) and the open action items as iCalendar."""
    return Response(consultations.calendar_feed(db.session), content_type=ICS)


@bp.get("/consultations/calendar/<city>.ics")
@api_auth
def city_calendar_feed(city: str) -> ResponseReturnValue:
    """Return one city's meetings and its action items as iCalendar."""
    found = city_service.by_slug(db.session, city)
    return Response(consultations.calendar_feed(db.session, found), content_type=ICS)


@bp.get("/consultations/assessment/<int:year>.csv")
@api_auth
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
