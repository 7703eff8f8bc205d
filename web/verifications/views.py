"""Verification requests (核报) in the UI: ask another city, answer one."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.verifications import VerificationAnswerCreate, VerificationCreate
from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from hub.verifications import services as verifications
from web.auth import current_actor
from web.errors import flash_refusal, flash_validation
from web.i18n import city_choices
from web.kick import kick_flows
from web.verifications.forms import AnswerForm, VerificationForm

bp = Blueprint("verifications", __name__, template_folder="templates")


# Verification requests ----------------------------------------------------------------------------


def _verification_form() -> VerificationForm:
    form = VerificationForm()
    # No city is chosen for the person: the target must be picked, and an empty pick is refused.
    form.to_city.choices = [
        ("", _("请选择")),
        *city_choices([c for c in city_service.all_cities(db.session) if c.id != current_user.city_id]),
    ]
    return form


@bp.route("/verifications", methods=["GET", "POST"])
@login_required
def verification_list() -> ResponseReturnValue:
    """List verification requests sent and received, and send a new one."""
    form = _verification_form()
    if form.validate_on_submit():
        try:
            data = VerificationCreate(
                to_city=form.to_city.data,
                subject=form.subject.data,
                question=form.question.data,
                deadline=utcnow() + timedelta(minutes=form.deadline_minutes.data or 60),
            )
            verifications.create(db.session, current_actor(), data)
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("核报已发出。"), "success")
            return redirect(url_for("verifications.verification_list"))
    return render_template(
        "verifications/verifications.html",
        form=form,
        answer_form=AnswerForm(),
        requests=verifications.for_city(db.session, current_user.city_id),
        now=utcnow(),
    ), 422 if form.is_submitted() else 200


@bp.post("/verifications/<uuid:public_id>/answer")
@login_required
def verification_answer(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer a verification request addressed to the person's city."""
    form = AnswerForm()
    if form.validate_on_submit():
        verifications.answer(
            db.session, current_actor(), public_id, VerificationAnswerCreate(answer=form.answer.data or "")
        )
        db.session.commit()
        flash(_("已答复。"), "success")
    else:
        flash(_("请填写答复内容。"), "error")
    return redirect(url_for("verifications.verification_list"))
