"""Information exchange in the UI: bulletins and warnings, verification requests, daily reports,
and the partner sync health page."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.bulletin import (
    BulletinCreate,
    DailyReportCreate,
    ReceiptCreate,
    VerificationAnswerCreate,
    VerificationCreate,
)
from hub.app import settings_of
from hub.extensions import db
from hub.models import utcnow
from hub.services import bulletins, daily_reports, partners, verifications
from hub.services import cities as city_service
from hub.services.errors import ServiceError
from web.auth import current_actor
from web.errors import flash_refusal, flash_validation
from web.forms import (
    AnswerForm,
    BulletinForm,
    DailyReportForm,
    EmptyForm,
    ReceiptForm,
    VerificationForm,
    category_choices,
    colour_choices,
)
from web.i18n import city_choices
from web.kick import kick_flows

bp = Blueprint("exchange", __name__)


def _other_cities() -> list[tuple[str, str]]:
    """Return the cities a person may address: every one but their own."""
    return city_choices([c for c in city_service.all_cities(db.session) if c.id != current_user.city_id])


# Bulletins -----------------------------------------------------------------------------------


@bp.get("/bulletins")
@login_required
def bulletin_list() -> ResponseReturnValue:
    """Show the city's inbox and outbox of bulletins, with the receipt matrix."""
    city_id = current_user.city_id
    return render_template(
        "exchange/bulletins.html",
        inbox=bulletins.inbox(db.session, city_id),
        outbox=bulletins.outbox(db.session, city_id),
        public=[
            b
            for b in bulletins.visible_list(db.session, city_id, current_only=True)
            if b.issuing_city_id != city_id and all(r.city_id != city_id for r in b.recipients)
        ],
        now=utcnow(),
    )


def _bulletin_form() -> BulletinForm:
    form = BulletinForm()
    form.colour.choices = [("", "—"), *colour_choices()]
    form.category.choices = category_choices()
    form.addressed_cities.choices = city_choices(
        [c for c in city_service.all_cities(db.session) if c.id != current_user.city_id]
    )
    return form


@bp.route("/bulletins/new", methods=["GET", "POST"])
@login_required
def bulletin_new() -> ResponseReturnValue:
    """Issue a bulletin or warning."""
    actor = current_actor()
    if not actor.can_write_incidents:
        abort(403)
    form = _bulletin_form()
    if form.validate_on_submit():
        try:
            data = BulletinCreate(
                kind=form.kind.data,
                colour=form.colour.data or None,
                category=form.category.data,
                title=form.title.data,
                area=form.area.data,
                text=form.text.data,
                addressed_cities=tuple(form.addressed_cities.data or ()),
                all_neighbours=form.all_neighbours.data,
                scope=form.scope.data,
                receipt_deadline=utcnow() + timedelta(minutes=form.receipt_minutes.data or 30),
                exercise=form.exercise.data,
            )
            bulletin = bulletins.issue(db.session, actor, data, mqtt_root=settings_of(current_app).mqtt_root)
        except ValidationError as exc:
            flash_validation(exc)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("已发出，正在送达各城市平台。"), "success")
            return redirect(url_for("exchange.bulletin_detail", public_id=bulletin.public_id))
    return render_template("exchange/bulletin_new.html", form=form), 422 if form.errors else 200


@bp.get("/bulletins/<uuid:public_id>")
@login_required
def bulletin_detail(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a bulletin with who received and acknowledged it."""
    bulletin = bulletins.get_for(db.session, current_actor(), public_id)
    mine = next((r for r in bulletin.recipients if r.city_id == current_user.city_id), None)
    return render_template(
        "exchange/bulletin_detail.html", bulletin=bulletin, mine=mine, form=ReceiptForm(), now=utcnow()
    )


@bp.post("/bulletins/<uuid:public_id>/receipt")
@login_required
def bulletin_receipt(public_id: uuid.UUID) -> ResponseReturnValue:
    """Acknowledge a bulletin for the person's city (签收)."""
    if ReceiptForm().validate_on_submit():
        actor = current_actor()
        if not actor.can_write_incidents:
            abort(403)
        bulletins.record_receipt(
            db.session, actor, public_id, ReceiptCreate(acknowledged_by=current_user.display_name)
        )
        db.session.commit()
        flash(_("已签收。"), "success")
    return redirect(url_for("exchange.bulletin_detail", public_id=public_id))


# Verification requests ----------------------------------------------------------------------------


def _verification_form() -> VerificationForm:
    form = VerificationForm()
    form.to_city.choices = city_choices(
        [c for c in city_service.all_cities(db.session) if c.id != current_user.city_id]
    )
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
            flash_validation(exc)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("核报已发出。"), "success")
            return redirect(url_for("exchange.verification_list"))
    return render_template(
        "exchange/verifications.html",
        form=form,
        answer_form=AnswerForm(),
        requests=verifications.for_city(db.session, current_user.city_id),
        now=utcnow(),
    )


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
    return redirect(url_for("exchange.verification_list"))


# Daily reports ---------------------------------------------------------------------------------


@bp.route("/daily-reports", methods=["GET", "POST"])
@login_required
def daily_report_page() -> ResponseReturnValue:
    """File today's report and show the month grid of who reported on time."""
    settings = settings_of(current_app)
    form = DailyReportForm()
    today = daily_reports.today()
    if form.validate_on_submit():
        try:
            daily_reports.submit(
                db.session,
                current_actor(),
                today,
                DailyReportCreate(zero=form.zero.data, body=form.body.data or ""),
                due=settings.daily_report_due_time,
            )
        except ValidationError as exc:
            flash_validation(exc)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("今日报告已报送。"), "success")
            return redirect(url_for("exchange.daily_report_page"))
    month = request.args.get("month", today.strftime("%Y-%m"))
    try:
        year, month_number = (int(part) for part in month.split("-"))
        date(year, month_number, 1)
    except ValueError:
        abort(400)
    return render_template(
        "exchange/daily_reports.html",
        form=form,
        today=today,
        due=settings.daily_report_due,
        filed=daily_reports.has_filed(db.session, current_user.city_id, today),
        grid=daily_reports.month_grid(db.session, year, month_number),
    )


# Partner sync health ---------------------------------------------------------------------------


@bp.get("/partners")
@login_required
def partner_health() -> ResponseReturnValue:
    """Show each city's platform sync: last success, lag, last error, records in the last run."""
    return render_template(
        "exchange/partners.html", health=partners.health(db.session), now=utcnow(), form=EmptyForm()
    )


@bp.get("/partners/<slug>/<feed>")
@login_required
def partner_records(slug: str, feed: str) -> ResponseReturnValue:
    """Show what a city's platform has shared in one feed, newest change first."""
    if feed not in partners.FEEDS:
        abort(404)
    city = city_service.by_slug(db.session, slug)
    return render_template(
        "exchange/partner_records.html",
        city=city,
        feed=feed,
        records=partners.records(db.session, city.id, feed),
    )


@bp.post("/partners/<slug>/sync")
@login_required
def partner_sync_now(slug: str) -> ResponseReturnValue:
    """Ask for an immediate sync of one city's platform."""
    if EmptyForm().validate_on_submit():
        actor = current_actor()
        if not (
            actor.is_admin
            or (actor.can_write_incidents and city_service.by_slug(db.session, slug).id == actor.city_id)
        ):
            abort(403)
        partners.platform_for(db.session, slug)
        partners.request_sync(db.session, slug, f"manual-{uuid.uuid4()}")
        db.session.commit()
        kick_flows(current_app)
        flash(_("已开始同步。"), "success")
    return redirect(url_for("exchange.partner_health"))
