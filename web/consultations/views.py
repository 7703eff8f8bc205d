"""Consultations in the UI: the list, calling one, the meeting page with answers, minutes and decisions."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from pydantic import ValidationError

from contracts.consultations import (
    ActionItemClose,
    ActionItemReopen,
    ConferenceBody,
    ConsultationCall,
    InvitationAnswer,
    MinutesRevision,
    Resolution,
)
from hub.action_items import services as action_items
from hub.consultations import services as consultations
from hub.consultations.models import ConferenceBodyRow
from hub.consultations.rules import SHANGHAI, RotationEvent, RotationRole, Skip, Swap
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from web.auth import current_actor
from web.consultations.forms import (
    AnswerForm,
    CallForm,
    CloseItemForm,
    ConferenceForm,
    MinutesForm,
    ReopenItemForm,
    ResolutionForm,
    RollCallForm,
    RotationChangeForm,
    SignForm,
)
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
    roll_call = RollCallForm()
    roll_call.present.choices = city_choices([i.city for i in meeting.invitations])
    roll_call.present.data = sorted(consultations.represented(meeting))
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
        experts_attending=consultations.experts_attending(meeting),
        minutes=minutes,
        items=action_items.for_context(db.session, meeting.public_id),
        answer_form=AnswerForm(),
        minutes_form=minutes_form,
        resolution_form=resolution_form,
        sign_form=SignForm(),
        roll_call=roll_call,
        cities_by_slug={i.city.slug: i.city for i in meeting.invitations},
        is_chair=actor.city_id == meeting.chair_city_id,
        can_write=actor.can_write_incidents,
        now=utcnow(),
    )


def _back(public_id: uuid.UUID) -> ResponseReturnValue:
    return redirect(url_for("consultations.consultation_detail", public_id=public_id))


def _apply(form: FlaskForm, act: Callable[[], object], done: str) -> bool:
    """Run a form's service call: commit and say `done`, or show why it was refused; return which."""
    try:
        act()
    except ValidationError as exc:
        flash_validation(exc, form)
    except ServiceError as exc:
        flash_refusal(exc)
    else:
        db.session.commit()
        flash(done, "success")
        return True
    return False


def _answer(form: AnswerForm) -> InvitationAnswer:
    return InvitationAnswer(
        answer=form.answer.data, delegate_name=form.delegate_name.data or None, note=form.note.data or ""
    )


@bp.post("/consultations/<uuid:public_id>/answer")
@login_required
def consultation_answer(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer the invitation for the person's city."""
    form = AnswerForm()
    if form.validate_on_submit():
        _apply(
            form,
            lambda: consultations.answer(db.session, current_actor(), public_id, _answer(form)),
            _("已答复。"),
        )
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
    """Record a resolution, by consensus or by the cities' votes, opening its action item if one is given."""
    form = ResolutionForm()
    meeting = consultations.get_for(db.session, current_actor(), public_id)
    form.owner_city.choices = [("", "—"), *city_choices([i.city for i in meeting.invitations])]
    if form.validate_on_submit():
        follow_up = bool(form.owner_city.data and form.action_title.data and form.due_on.data)
        votes = []
        if form.decision_mode.data == "vote":
            for invitation in meeting.invitations:
                vote = request.form.get(f"vote-{invitation.city.slug}", "")
                if vote:
                    votes.append({"city": invitation.city.slug, "vote": vote})
        try:
            data = Resolution.model_validate(
                {
                    "text": form.text.data,
                    "decision_mode": form.decision_mode.data,
                    "votes": votes,
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
            row, _opened = consultations.add_resolution(db.session, current_actor(), public_id, data)
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            if row.outcome == "adopted":
                flash(_("决议已记录：通过。"), "success")
            else:
                flash(_("决议已记录：未通过。"), "info")
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/roll-call")
@login_required
def consultation_roll_call(public_id: uuid.UUID) -> ResponseReturnValue:
    """Record the roll-call as the chair: which invited cities are present."""
    form = RollCallForm()
    meeting = consultations.get_for(db.session, current_actor(), public_id)
    form.present.choices = city_choices([i.city for i in meeting.invitations])
    if form.validate_on_submit():
        present = list(form.present.data or ())
        _apply(
            form,
            lambda: consultations.record_attendance(db.session, current_actor(), public_id, present),
            _("点名已记录：%(n)d 个城市出席。", n=len(present)),
        )
    return _back(public_id)


@bp.post("/consultations/<uuid:public_id>/experts/<uuid:invitation_id>/answer")
@login_required
def expert_answer(public_id: uuid.UUID, invitation_id: uuid.UUID) -> ResponseReturnValue:
    """Answer for an expert of the person's city's registry."""
    form = AnswerForm()
    if form.validate_on_submit():
        _apply(
            form,
            lambda: consultations.answer_for_expert(
                db.session, current_actor(), public_id, invitation_id, _answer(form)
            ),
            _("已代专家答复。"),
        )
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


# Action items -------------------------------------------------------------------------------------

ITEM_VIEWS = ("owned", "chaired", "all")


@bp.get("/action-items")
@login_required
def action_item_list() -> ResponseReturnValue:
    """List action items: the city's own, those it follows as chair, or all (admins), by state."""
    actor = current_actor()
    view = request.args.get("view") or ("all" if actor.is_admin else "owned")
    state = request.args.get("state") or "open"
    if view not in ITEM_VIEWS or state not in (*action_items.LIST_STATES, "all"):
        abort(400)
    if actor.city_id is None and view != "all":
        view = "all"
    if view == "all" and not actor.is_admin:
        abort(403)
    items = action_items.listing(
        db.session,
        owner_city_id=actor.city_id if view == "owned" else None,
        chair_city_id=actor.city_id if view == "chaired" else None,
        state=None if state == "all" else state,
    )
    return render_template(
        "consultations/action_items.html",
        items=items,
        view=view,
        state=state,
        close_form=CloseItemForm(),
        reopen_form=ReopenItemForm(),
        can_write=actor.can_write_incidents,
        overdue={i.id: action_items.days_overdue(i) for i in items if action_items.is_overdue(i)},
        deadlines={i.id: action_items.overdue_since(i) for i in items},
        today=utcnow().astimezone(SHANGHAI).date(),
        now=utcnow(),
    )


def _back_to_items() -> ResponseReturnValue:
    view = request.args.get("view", "")
    state = request.args.get("state", "")
    return redirect(url_for("consultations.action_item_list", view=view or None, state=state or None))


@bp.post("/action-items/<uuid:public_id>/close")
@login_required
def action_item_close(public_id: uuid.UUID) -> ResponseReturnValue:
    """Close an action item as its owner city, with evidence."""
    form = CloseItemForm()
    if form.validate_on_submit():
        documents = [line.strip() for line in (form.documents.data or "").splitlines() if line.strip()]

        def close() -> None:
            evidence = {"note": form.note.data, "documents": documents}
            action_items.close(
                db.session, current_actor(), public_id, ActionItemClose.model_validate({"evidence": evidence})
            )

        _apply(form, close, _("督办事项已办结。"))
    else:
        flash(_("办结须附办结说明。"), "error")
    return _back_to_items()


@bp.post("/action-items/<uuid:public_id>/reopen")
@login_required
def action_item_reopen(public_id: uuid.UUID) -> ResponseReturnValue:
    """Reopen a closed action item as the chair city."""
    form = ReopenItemForm()
    if form.validate_on_submit():
        _apply(
            form,
            lambda: action_items.reopen(
                db.session,
                current_actor(),
                public_id,
                ActionItemReopen(reason=form.reason.data, due_on=form.due_on.data),
            ),
            _("督办事项已重新办理。"),
        )
    else:
        flash(_("重新办理须说明理由。"), "error")
    return _back_to_items()


# Annual assessment --------------------------------------------------------------------------------


@bp.get("/consultations/assessment")
@login_required
def assessment() -> ResponseReturnValue:
    """Show each city's figures for a year: meetings invited and attended, agenda, action items."""
    this_year = utcnow().astimezone(SHANGHAI).year
    year = request.args.get("year", type=int) or this_year
    if not 2000 <= year <= 2100:
        abort(404)
    names = {c.slug: c for c in city_service.all_cities(db.session)}
    return render_template(
        "consultations/assessment.html",
        year=year,
        years=list(range(this_year, this_year - 5, -1)),
        rows=consultations.assessment(db.session, year),
        cities=names,
    )


# The standing conference --------------------------------------------------------------------------


def _rotation_form(body_cities: list[str]) -> RotationChangeForm:
    form = RotationChangeForm()
    choices = city_choices(city_service.by_slugs(db.session, body_cities))
    form.city.choices = choices
    form.with_city.choices = [("", "—"), *choices]
    return form


def _conference_form(body: ConferenceBodyRow, definition: ConferenceBody) -> ConferenceForm:
    """Return the definition's form, filled with what the plan gives for the next meeting."""
    (following,) = consultations.upcoming_turns(body, 1)
    form = ConferenceForm(
        name=definition.name,
        next_host=following.host,
        next_meeting_on=following.starts_at.astimezone(SHANGHAI).date(),
        meeting_time=definition.meeting_time,
        duration_minutes=definition.duration_minutes,
        rhythm_months=definition.rhythm_months,
        agenda_deadline_days=definition.agenda_deadline_days,
        lead_days=definition.lead_days,
    )
    form.next_host.choices = city_choices(city_service.all_cities(db.session))
    return form


@bp.get("/consultations/conference")
@login_required
def conference() -> ResponseReturnValue:
    """Show the standing conference: members, rotation, rhythm, deadlines, the next ten turns, changes."""
    actor = current_actor()
    shown = [
        (body, consultations.body_contract(body), consultations.upcoming_turns(body, 10))
        for body in consultations.bodies(db.session)
    ]
    return render_template(
        "consultations/conference.html",
        bodies=shown,
        forms={
            body.public_id: _rotation_form(list(definition.rotation_order)) for body, definition, _ in shown
        },
        definition_forms={
            body.public_id: _conference_form(body, definition) for body, definition, _ in shown
        },
        stewards={body.public_id: consultations.can_steward(db.session, actor, body) for body, _, _ in shown},
        cities={c.slug: c for c in city_service.all_cities(db.session)},
        all_cities=city_service.all_cities(db.session),
    )


@bp.post("/consultations/conference/<uuid:body_id>/definition")
@login_required
def conference_definition(body_id: uuid.UUID) -> ResponseReturnValue:
    """Change the conference's members, rotation, rhythm and deadlines from its next meeting (audited)."""
    body = consultations.get_body(db.session, body_id)
    definition = consultations.body_contract(body)
    form = _conference_form(body, definition)
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("consultations.conference"))
    places: list[tuple[int, str]] = []
    for city in city_service.all_cities(db.session):
        place = request.form.get(f"order-{city.slug}", "").strip()
        if place:
            if not place.isdigit():
                flash(_("轮值序号须为正整数。"), "error")
                return redirect(url_for("consultations.conference"))
            places.append((int(place), city.slug))
    order = [slug for _, slug in sorted(places)]

    def update() -> object:
        data = ConferenceBody.model_validate(
            {
                **definition.model_dump(),
                "name": form.name.data,
                "member_cities": order,
                "rotation_order": order,
                "first_host": form.next_host.data,
                "first_meeting_on": form.next_meeting_on.data,
                "meeting_time": form.meeting_time.data,
                "duration_minutes": form.duration_minutes.data,
                "rhythm_months": form.rhythm_months.data,
                "agenda_deadline_days": form.agenda_deadline_days.data,
                "lead_days": form.lead_days.data,
            }
        )
        return consultations.update_body(db.session, current_actor(), body.public_id, data)

    _apply(form, update, _("联席会议机制已修改，今后的承办、主持和会期已重新计算。"))
    return redirect(url_for("consultations.conference"))


@bp.post("/consultations/conference/<uuid:body_id>/rotation")
@login_required
def conference_rotation(body_id: uuid.UUID) -> ResponseReturnValue:
    """Record a skip or swap of the rotation with its reason (audited)."""
    body = consultations.get_body(db.session, body_id)
    form = _rotation_form(list(consultations.body_contract(body).rotation_order))
    if form.validate_on_submit():
        role = RotationRole(form.role.data)
        event: RotationEvent
        if form.kind.data == "swap":
            if not form.with_city.data:
                flash(_("对调须选择对调城市。"), "error")
                return redirect(url_for("consultations.conference"))
            event = Swap(form.seq.data, form.city.data, form.with_city.data, form.reason.data.strip(), role)
        else:
            event = Skip(form.seq.data, form.city.data, form.reason.data.strip(), role)
        _apply(
            form,
            lambda: consultations.record_rotation_change(db.session, current_actor(), body.id, event),
            _("轮值变更已记录，后续轮值已重新计算。"),
        )
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    return redirect(url_for("consultations.conference"))
