"""Bulletins and warnings in the UI: the list, issuing one, its receipts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, cast

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.bulletins import BulletinCreate, ReceiptCreate
from hub.app import settings_of
from hub.bulletins import services as bulletins
from hub.extensions import db
from hub.incidents import services as incident_service
from hub.kernel import cities as city_service
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from web.auth import current_actor
from web.bulletins.forms import BulletinForm, ReceiptForm, colour_choices
from web.errors import flash_refusal, flash_validation
from web.i18n import city_choices, city_name
from web.incidents.forms import category_choices
from web.kick import kick_flows
from web.queries import csv_response, day_range, local_text, page_number, text

if TYPE_CHECKING:
    from hub.bulletins.models import Bulletin, BulletinRecipient
    from hub.incidents.models import Incident

bp = Blueprint("bulletins", __name__, template_folder="templates")


def _other_cities() -> list[tuple[str, str]]:
    """Return the cities a person may address: every one but their own."""
    return city_choices([c for c in city_service.all_cities(db.session) if c.id != current_user.city_id])


# Bulletins -----------------------------------------------------------------------------------


BOXES = ("inbox", "outbox")
KINDS = ("bulletin", "warning")


def _search_filters() -> bulletins.BulletinFilter:
    """Read the search's filters from the query string; a value no list has is a 400."""
    args = request.args
    box = args.get("box") or None
    kind = args.get("kind") or None
    if (box is not None and box not in BOXES) or (kind is not None and kind not in KINDS):
        abort(400)
    since, until = day_range()
    return bulletins.BulletinFilter(
        box=cast(Literal["inbox", "outbox"] | None, box),
        kind=cast(Literal["bulletin", "warning"] | None, kind),
        city=args.get("city") or None,
        person=text("person"),
        since=since,
        until=until,
        text=text("q"),
    )


@bp.get("/bulletins")
@login_required
def bulletin_list() -> ResponseReturnValue:
    """Show the city's inbox and outbox of bulletins, with the receipt matrix, and a search of all
    the bulletins it may see (filters in the query string, page by page)."""
    city_id = current_user.city_id
    return render_template(
        "bulletins/bulletins.html",
        inbox=bulletins.inbox(db.session, city_id),
        outbox=bulletins.outbox(db.session, city_id),
        public=[
            b
            # The newest current ones; the search below finds the rest.
            for b in bulletins.visible_list(db.session, city_id, current_only=True, limit=30)
            if b.issuing_city_id != city_id and all(r.city_id != city_id for r in b.recipients)
        ],
        found=bulletins.search(db.session, city_id, _search_filters(), page=page_number()),
        cities=city_service.all_cities(db.session),
        args=request.args,
        filter_args={k: v for k, v in request.args.items() if k != "page" and v},
        now=utcnow(),
    )


@bp.get("/bulletins/export.csv")
@login_required
def bulletin_export() -> ResponseReturnValue:
    """Download the searched bulletins as CSV, with each addressed city's receipt, times in the hub's zone."""
    found = bulletins.export(db.session, current_user.city_id, _search_filters())
    kinds = {"bulletin": _("通报"), "warning": _("预警")}
    colours = dict(colour_choices())
    now = utcnow()

    def receipt(b: Bulletin, r: BulletinRecipient) -> str:
        if r.receipt_at:
            state = _("已签收") + " " + local_text(r.receipt_at)
        elif bulletins.is_late(r, now) and not b.cancelled_at:
            state = _("逾期未签收")
        elif r.delivered_at:
            state = _("平台已接收")
        else:
            state = _("待送达")
        return f"{city_name(r.city)}：{state}"

    header = [
        _("编号"), _("类型"), _("颜色"), _("标题"), _("区域"), _("发布城市"), _("发布人"),
        _("发布时间"), _("签收期限"), _("失效时间"), _("已撤销"), _("演练"), _("回执情况"),
    ]  # fmt: skip
    rows = (
        [
            str(b.public_id),
            kinds.get(b.kind, b.kind),
            colours.get(b.colour or "", ""),
            b.title,
            b.area,
            city_name(b.issuing_city),
            b.issued_by.display_name if b.issued_by else "",
            local_text(b.issued_at),
            local_text(b.receipt_deadline),
            local_text(b.expires_at),
            local_text(b.cancelled_at),
            _("是") if b.exercise else "",
            "; ".join(receipt(b, r) for r in b.recipients),
        ]
        for b in found
    )
    return csv_response(header, rows, "bulletins.csv")


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
    refused = False
    about = _incident_of(form)
    if about is not None and not form.is_submitted():
        form.incident.data = str(about.id)
        form.title.data = about.title
        form.category.data = about.category.value
        form.area.data = about.location
    if form.validate_on_submit():
        refused = True
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
            bulletin = bulletins.issue(
                db.session,
                actor,
                data,
                mqtt_root=settings_of(current_app).mqtt_root,
                incident_id=about.id if about is not None else None,
            )
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("已发出，正在送达各城市平台。"), "success")
            return redirect(url_for("bulletins.bulletin_detail", public_id=bulletin.public_id))
    return render_template(
        "bulletins/bulletin_new.html", form=form, about=about
    ), 422 if form.errors or refused else 200


def _incident_of(form: BulletinForm) -> Incident | None:
    """Return the incident a new bulletin is about (`?incident=` or the form's hidden field), if any."""
    raw = form.incident.data if form.is_submitted() else request.args.get("incident")
    if not raw:
        return None
    if not str(raw).isdigit():
        abort(400)
    return incident_service.get_incident(db.session, int(raw))


@bp.get("/bulletins/<uuid:public_id>")
@login_required
def bulletin_detail(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a bulletin with who received and acknowledged it."""
    bulletin = bulletins.get_for(db.session, current_actor(), public_id)
    mine = next((r for r in bulletin.recipients if r.city_id == current_user.city_id), None)
    actor = current_actor()
    issuer = actor.can_write_incidents and bulletin.issuing_city_id == actor.city_id
    return render_template(
        "bulletins/bulletin_detail.html",
        bulletin=bulletin,
        mine=mine,
        issuer=issuer,
        not_delivered=bulletins.not_delivered(bulletin) if issuer else [],
        form=ReceiptForm(),
        now=utcnow(),
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
    if request.form.get("back") == "desk":
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("bulletins.bulletin_detail", public_id=public_id))


@bp.post("/bulletins/<uuid:public_id>/cancel")
@login_required
def bulletin_cancel(public_id: uuid.UUID) -> ResponseReturnValue:
    """Cancel a bulletin of the person's city (撤销)."""
    if ReceiptForm().validate_on_submit():
        try:
            bulletins.cancel(db.session, current_actor(), public_id)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("已撤销，正在通知已收到的城市平台。"), "success")
    return redirect(url_for("bulletins.bulletin_detail", public_id=public_id))


@bp.post("/bulletins/<uuid:public_id>/retry")
@login_required
def bulletin_retry(public_id: uuid.UUID) -> ResponseReturnValue:
    """Ask at once for another delivery round to the cities not reached (立即重试)."""
    if ReceiptForm().validate_on_submit():
        try:
            bulletins.retry_now(db.session, current_actor(), public_id)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("已重新发送。"), "success")
    return redirect(url_for("bulletins.bulletin_detail", public_id=public_id))
