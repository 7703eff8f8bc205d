"""Consultations in the UI: the list, calling one, the meeting page with answers, minutes and decisions."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.consultations import ConsultationCall, InvitationAnswer, MinutesRevision, Resolution
from hub.action_items import services as action_items
from hub.consultations import services as consultations
from hub.consultations.rules import SHANGHAI
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from web.auth import current_actor
from web.consultations.forms import AnswerForm, CallForm, MinutesForm, ResolutionForm, SignForm
from web.errors import flash_refusal, flash_validation
from web.i18n import city_choices
from web.kick import kick_flows

bp = Blueprint("consultations", __name__, template_folder="templates")


@bp.get("/consultations")
@login_required
def consultation_list() -> ResponseReturnValue:
    """Show the meetings the person's city takes part in, newest first."""
    actor = current_actor()
    return render_template(
        "consultations/consultations.html",
        meetings=consultations.visible_list(db.session, actor),
        proposals=consultations.proposals_for(db.session, actor.city_id) if actor.city_id else [],
        items=action_items.owned_by(db.session, actor.city_id) if actor.city_id else [],
        now=utcnow(),
    )


@bp.route("/consultations/new", methods=["GET", "POST"])
@login_required
def consultation_new() -> ResponseReturnValue:
    """Call a consultation as a coordinator."""
    actor = current_actor()
    if not actor.can_write_incidents:
        abort(403)
    form = CallForm()
    form.invited_cities.choices = city_choices(
        [c for c in city_service.all_cities(db.session) if c.id != current_user.city_id]
    )
    if form.validate_on_submit():
        try:
            data = ConsultationCall(
                title=form.title.data,
                starts_at=form.starts_at.data.replace(tzinfo=SHANGHAI),
                duration_minutes=form.duration_minutes.data,
                video_link=form.video_link.data or None,
                location=form.location.data or "",
                invited_cities=tuple(form.invited_cities.data or ()),
                exercise=form.exercise.data,
            )
            meeting = consultations.call(db.session, actor, data)
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("会商已召集，邀请正在送达各城市。"), "success")
            return redirect(url_for("consultations.consultation_detail", public_id=meeting.public_id))
    return render_template("consultations/consultation_new.html", form=form), 422 if form.errors else 200


@bp.get("/consultations/<uuid:public_id>")
@login_required
def consultation_detail(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a meeting: invitations and answers, quorum, agenda, minutes, resolutions, action items."""
    actor = current_actor()
    meeting = consultations.get_for(db.session, actor, public_id)
    minutes = consultations.minutes_of(meeting)
    resolution_form = ResolutionForm()
    resolution_form.owner_city.choices = [
        ("", "—"),
        *city_choices([i.city for i in meeting.invitations]),
    ]
    latest = minutes.latest
    minutes_form = MinutesForm(
        base_revision=str(minutes.number),
        content=latest.content if latest else "",
        public_part=latest.public_part if latest else "",
    )
    return render_template(
        "consultations/consultation_detail.html",
        meeting=meeting,
        mine=consultations.invitation_of(meeting, actor.city_id),
        quorum=consultations.quorum_now(meeting),
        minutes=minutes,
        items=action_items.for_context(db.session, meeting.public_id),
        answer_form=AnswerForm(),
        minutes_form=minutes_form,
        resolution_form=resolution_form,
        sign_form=SignForm(),
        is_chair=actor.city_id == meeting.chair_city_id,
        now=utcnow(),
    )


def _back(public_id: uuid.UUID) -> ResponseReturnValue:
    return redirect(url_for("consultations.consultation_detail", public_id=public_id))


@bp.post("/consultations/<uuid:public_id>/answer")
@login_required
def consultation_answer(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer the invitation for the person's city."""
    form = AnswerForm()
    if form.validate_on_submit():
        try:
            data = InvitationAnswer(
                answer=form.answer.data,
                delegate_name=form.delegate_name.data or None,
                note=form.note.data or "",
            )
            consultations.answer(db.session, current_actor(), public_id, data)
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("已答复。"), "success")
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/call")
@login_required
def consultation_call(public_id: uuid.UUID) -> ResponseReturnValue:
    """Call a consultation the hub proposed to the person's city."""
    if SignForm().validate_on_submit():
        consultations.confirm_proposal(db.session, current_actor(), public_id)
        db.session.commit()
        kick_flows(current_app)
        flash(_("会商已召集，邀请正在送达各城市。"), "success")
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/minutes")
@login_required
def consultation_minutes(public_id: uuid.UUID) -> ResponseReturnValue:
    """Save the minutes: a new revision when something changed."""
    form = MinutesForm()
    if form.validate_on_submit():
        data = MinutesRevision(
            base_revision=int(form.base_revision.data or 0),
            content=form.content.data or "",
            public_part=form.public_part.data or "",
        )
        row = consultations.save_minutes(db.session, current_actor(), public_id, data)
        db.session.commit()
        if row is None:
            flash(_("纪要没有改动。"), "info")
        else:
            flash(_("纪要已保存为第 %(n)d 版。", n=row.number), "success")
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/resolutions")
@login_required
def consultation_resolution(public_id: uuid.UUID) -> ResponseReturnValue:
    """Record a resolution adopted by consensus, opening its action item if one is given."""
    form = ResolutionForm()
    meeting = consultations.get_for(db.session, current_actor(), public_id)
    form.owner_city.choices = [("", "—"), *city_choices([i.city for i in meeting.invitations])]
    if form.validate_on_submit():
        follow_up = bool(form.owner_city.data and form.action_title.data and form.due_on.data)
        try:
            data = Resolution.model_validate(
                {
                    "text": form.text.data,
                    "decision_mode": "consensus",
                    "follow_up": follow_up,
                    "action_items": [
                        {
                            "owner_city": form.owner_city.data,
                            "title": form.action_title.data,
                            "due_on": form.due_on.data,
                        }
                    ]
                    if follow_up
                    else [],
                }
            )
            consultations.add_resolution(db.session, current_actor(), public_id, data)
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("决议已记录。"), "success")
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/sign")
@login_required
def consultation_sign(public_id: uuid.UUID) -> ResponseReturnValue:
    """Sign the minutes as the chair; they are frozen from then on."""
    if SignForm().validate_on_submit():
        consultations.sign(db.session, current_actor(), public_id)
        db.session.commit()
        kick_flows(current_app)
        flash(_("纪要已签发，不再修改。"), "success")
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/publish")
@login_required
def consultation_publish(public_id: uuid.UUID) -> ResponseReturnValue:
    """Publish the parts of the signed minutes marked public as a public bulletin, as the chair."""
    if SignForm().validate_on_submit():
        try:
            consultations.publish_public_part(db.session, current_actor(), public_id)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("纪要的公开部分已发布为公开通报。"), "success")
    return _back(public_id)
