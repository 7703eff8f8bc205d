"""Mutual aid in the UI: the city's registry, requests with each line's progress, offers and steps."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.mutual_aid import AidPackage, Contact, GeoPoint, RegistryEntry, ReportTo, RequestLine
from contracts.resource_types import CATALOGUE
from hub.app import settings_of
from hub.extensions import db
from hub.kernel.errors import ServiceError
from hub.kernel.types import utcnow
from hub.mutual_aid import costs as aid_costs
from hub.mutual_aid import demo as aid_demo
from hub.mutual_aid import services as aid
from hub.mutual_aid import upkeep as aid_upkeep
from hub.mutual_aid import waiting as aid_waiting
from hub.mutual_aid.models import AidRequest
from web.auth import current_actor
from web.desk import live as desk_live
from web.errors import flash_refusal, flash_validation
from web.kick import kick_flows, kick_mqtt
from web.mutual_aid.forms import (
    ActionForm,
    CostForm,
    EntryForm,
    ImportForm,
    OfferForm,
    RequestForm,
    type_choices,
    type_names,
)

bp = Blueprint("mutual_aid", __name__, template_folder="templates")
SHANGHAI = ZoneInfo("Asia/Shanghai")


# Requests ----------------------------------------------------------------------------------------


@bp.get("/aid")
@login_required
def request_list() -> ResponseReturnValue:
    """List the requests the city made or was asked about."""
    return render_template(
        "mutual_aid/requests.html",
        requests=aid.requests_for(db.session, current_user.city_id),
        demo_flood=settings_of(current_app).demo and current_user.city.slug == "linyi",
        form=ActionForm(),
    )


@bp.post("/aid/demo/linyi-flood")
@login_required
def demo_linyi_flood() -> ResponseReturnValue:
    """Start the demo's Linyi flood: an incident and a request for pumps and boats (demo only)."""
    if not settings_of(current_app).demo:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        created = aid_demo.start_linyi_flood(db.session, current_actor())
        db.session.commit()
    except ServiceError as exc:
        flash_refusal(exc)
        return redirect(url_for(".request_list"))
    kick_flows(current_app)
    flash(_("临沂洪涝演示已开始：徐州、枣庄、连云港的值班员将陆续答复报价。"), "success")
    return redirect(url_for(".request_detail", public_id=created.public_id))


@bp.route("/aid/requests/new", methods=["GET", "POST"])
@login_required
def request_new() -> ResponseReturnValue:
    """Ask the other cities for help with one line."""
    form = RequestForm()
    form.type_code.choices = type_choices()
    if form.validate_on_submit():
        try:
            row = CATALOGUE[form.type_code.data]
            needed_by = form.needed_by.data.replace(tzinfo=SHANGHAI)
            line = RequestLine(
                line_id="L1",
                type_code=form.type_code.data,
                min_grade=int(form.min_grade.data) if form.min_grade.data else None,  # type: ignore[arg-type]
                quantity=form.quantity.data,
                unit=row.unit,
                needed_by=needed_by,
                duration_hours=form.duration_hours.data,
                report_to=ReportTo(
                    place=form.report_to_place.data,
                    point=GeoPoint(lat=form.report_to_lat.data, lon=form.report_to_lon.data),
                ),
            )
            contact = Contact(name=form.contact_name.data, phone=form.contact_phone.data)
            created = aid.create_request(
                db.session,
                current_actor(),
                title=form.title.data,
                lines=[line],
                contact=contact,
                exercise=form.exercise.data,
            )
            db.session.commit()
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            kick_flows(current_app)
            flash(_("支援请求已发出。"), "success")
            return redirect(url_for(".request_detail", public_id=created.public_id))
    return render_template("mutual_aid/request_new.html", form=form)


def _request_context(found: AidRequest, city_id: int) -> dict[str, object]:
    """Return what the request page and its live part show to a city."""
    commitments = aid.commitments_of(db.session, found.id)
    offer_form = OfferForm()
    own = [e for e in aid.registry_of(db.session, city_id) if e.status == "available" and e.available > 0]
    offer_form.resource_id.choices = [(e.id, f"{e.name} · {e.available.normalize()} {e.unit}") for e in own]
    asks = aid.asks(db.session, found.id)
    asked = [a for a in asks if a.city_id == city_id and a.answered_at is None]
    progress = aid.progress(db.session, found)
    # Lines still short of what they ask for, counting offers: the ones an owner may still offer for.
    open_lines = [p for p in progress if p.offered + p.committed + p.en_route + p.on_scene < p.requested]
    return {
        "aid_request": found,
        "progress": progress,
        "open_lines": open_lines,
        "asks": asks,
        "waiting_on": aid_waiting.on_request(db.session, found),
        "commitments": commitments,
        "steps": {c.id: aid.steps_for(c, city_id) for c in commitments},
        "can_offer": bool(own and open_lines)
        and found.requesting_city_id != city_id
        and found.status == "open",
        "can_decline": bool(asked),
        "offer_form": offer_form,
        "form": ActionForm(),
        "cost_form": CostForm(),
        "cost_side": {
            c.id: "owner"
            if c.owner_city_id == city_id
            else "requester"
            if c.requesting_city_id == city_id
            else ""
            for c in commitments
        },
        "signs_owed": {c.id for c in commitments if aid_costs.signs_owed(c, city_id)},
        "type_names": type_names(),
        "local_input": _local_input,
    }


def _render_request(template: str, public_id: uuid.UUID, city_id: int) -> str:
    """Render a request page, or its live part, as the city sees it."""
    found = aid.get_request_by_public_id(db.session, public_id)
    return render_template(template, **_request_context(found, city_id))


def _local_input(moment: datetime, hours: int = 0) -> str:
    """Return a stored time plus `hours` as a datetime-local value in Asia/Shanghai."""
    return (moment + timedelta(hours=hours)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


@bp.get("/aid/requests/<uuid:public_id>")
@login_required
def request_detail(public_id: uuid.UUID) -> ResponseReturnValue:
    """Show a request, its lines with their progress, who is waited on, the cities asked and every offer."""
    return _render_request("mutual_aid/request.html", public_id, current_user.city_id)


@bp.get("/aid/requests/<uuid:public_id>/live")
def request_live(public_id: uuid.UUID) -> ResponseReturnValue:
    """Return the live part of a request page (polled while no stream can be held)."""
    if not current_user.is_authenticated:
        return desk_live.session_ended()
    return _render_request("mutual_aid/_request_live.html", public_id, current_user.city_id)


@bp.get("/aid/requests/<uuid:public_id>/events")
def request_events(public_id: uuid.UUID) -> ResponseReturnValue:
    """Push the live part of a request page whenever the city's view of mutual aid changes."""
    if not current_user.is_authenticated:
        return desk_live.session_ended()
    aid.get_request_by_public_id(db.session, public_id)  # a 404 before the stream starts
    city_id = current_user.city_id

    def render() -> str:
        return _render_request("mutual_aid/_request_live.html", public_id, city_id)

    return desk_live.stream_response(city_id, current_user.get_id(), render, "update", only_changes=True)


@bp.get("/aid/waiting")
@login_required
def waiting() -> ResponseReturnValue:
    """Show, per city (the reader's first), the mutual-aid work waiting on it, with countdowns."""
    return render_template(
        "mutual_aid/waiting.html", cities=aid_waiting.by_city(db.session, first=current_user.city_id)
    )


@bp.post("/aid/lines/<int:line_id>/offer")
@login_required
def offer(line_id: int) -> ResponseReturnValue:
    """Offer one of the city's entries for a line, as its stored package, in one click."""
    line = aid.get_line(db.session, line_id)
    form = OfferForm()
    form.resource_id.choices = [(e.id, e.name) for e in aid.registry_of(db.session, current_user.city_id)]
    if not form.validate_on_submit():
        abort(400)
    try:
        aid.offer_package(db.session, current_actor(), line_id, form.resource_id.data)
        db.session.commit()
        flash(_("已报价。"), "success")
    except ServiceError as exc:
        flash_refusal(exc)
    return redirect(url_for(".request_detail", public_id=line.request.public_id))


@bp.post("/aid/requests/<uuid:public_id>/decline")
@login_required
def decline_request(public_id: uuid.UUID) -> ResponseReturnValue:
    """Answer that the city cannot help with a request it was asked about."""
    found = aid.get_request_by_public_id(db.session, public_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        aid.decline_ask(db.session, current_actor(), found.id)
        db.session.commit()
    except ServiceError as exc:
        flash_refusal(exc)
    return redirect(url_for(".request_detail", public_id=public_id))


@bp.post("/aid/commitments/<int:commitment_id>/<step>")
@login_required
def commitment_step(commitment_id: int, step: str) -> ResponseReturnValue:
    """Take one step (accept, authorise, dispatch, arrive, extend, release, return, …) for the city."""
    commitment = aid.get_commitment(db.session, commitment_id)
    public_id = commitment.request.public_id
    form = ActionForm()
    back = redirect(url_for(".request_detail", public_id=public_id))
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return back
    new_end = form.new_end.data.replace(tzinfo=SHANGHAI) if form.new_end.data else None
    if step == "answer-extension" and form.grant.data != "1":
        new_end = None  # the owner refuses: the end stays
    elif step in ("extend", "answer-extension") and new_end is None:
        flash(_("请填写延长至的时间。"), "error")
        return back
    zero = Decimal(0)
    counts = aid.ReturnCounts(
        returned=form.returned.data, consumed=form.consumed.data or zero, lost=form.lost.data or zero
    )
    try:
        aid.take_step(
            db.session,
            current_actor(),
            commitment_id,
            step,
            order_number=form.order_number.data,
            counts=counts,
            new_end=new_end,
            root=settings_of(current_app).mqtt_root,
        )
        db.session.commit()
    except ServiceError as exc:
        flash_refusal(exc)
    else:
        if step == "dispatch":
            kick_mqtt(current_app)
    return back


@bp.post("/aid/commitments/<int:commitment_id>/cost")
@login_required
def commitment_cost(commitment_id: int) -> ResponseReturnValue:
    """Enter the actual cost of a returned commitment, for the owning city."""
    commitment = aid.get_commitment(db.session, commitment_id)
    public_id = commitment.request.public_id
    form = CostForm()
    if not form.validate_on_submit() or form.amount.data is None:
        flash(_("请填写实际费用。"), "error")
        return redirect(url_for(".request_detail", public_id=public_id))
    try:
        amount = Decimal(form.amount.data).quantize(Decimal("0.01"))
        aid_costs.enter_actual_cost(db.session, current_actor(), commitment_id, amount, form.note.data or "")
        db.session.commit()
        flash(_("已录入实际费用。"), "success")
    except ServiceError as exc:
        flash_refusal(exc)
    return redirect(url_for(".request_detail", public_id=public_id))


@bp.post("/aid/commitments/<int:commitment_id>/cost/sign")
@login_required
def commitment_cost_sign(commitment_id: int) -> ResponseReturnValue:
    """Sign the actual cost for the city's own side."""
    commitment = aid.get_commitment(db.session, commitment_id)
    public_id = commitment.request.public_id
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        aid_costs.sign_cost(db.session, current_actor(), commitment_id)
        db.session.commit()
        flash(_("已签认费用。"), "success")
    except ServiceError as exc:
        flash_refusal(exc)
    return redirect(url_for(".request_detail", public_id=public_id))


# The registry ------------------------------------------------------------------------------------


@bp.get("/aid/registry")
@login_required
def registry() -> ResponseReturnValue:
    """Show the city's registry with its ledger and when each entry was verified."""
    entries = aid.registry_of(db.session, current_user.city_id)
    stale = utcnow() - aid_upkeep.fresh_for(settings_of(current_app))
    return render_template("mutual_aid/registry.html", entries=entries, stale=stale, import_form=ImportForm())


def _entry_from_form(form: EntryForm) -> RegistryEntry:
    row = CATALOGUE[form.type_code.data]
    now = utcnow()
    package = None
    if form.personnel.data is not None or form.daily_rate.data is not None:
        package = AidPackage(
            personnel=form.personnel.data or 0,
            daily_rate=form.daily_rate.data or Decimal(0),
            self_sufficiency_hours=form.self_sufficiency_hours.data or 0,
            mobilise_minutes=form.mobilise_minutes.data or 0,
        )
    return RegistryEntry(
        id=form.external_id.data,
        owner_city=current_user.city.slug,
        type_code=form.type_code.data,
        kind=row.kind,
        grade=int(form.grade.data) if form.grade.data else None,  # type: ignore[arg-type]
        name=form.name.data,
        quantity=form.quantity.data,
        unit=row.unit,
        location=GeoPoint(lat=form.lat.data, lon=form.lon.data),
        place=form.place.data or "",
        status=form.status.data,
        contact=Contact(name=form.contact_name.data, phone=form.contact_phone.data),
        package=package,
        verified_at=now,
        verified_by=current_user.display_name,
        updated_at=now,
    )


@bp.route("/aid/registry/new", methods=["GET", "POST"])
@bp.route("/aid/registry/<int:entry_id>/edit", methods=["GET", "POST"])
@login_required
def entry_edit(entry_id: int | None = None) -> ResponseReturnValue:
    """Add an entry to the city's registry, or edit (and so verify again) one of its entries."""
    existing = aid.get_entry(db.session, entry_id) if entry_id is not None else None
    if existing is not None and existing.owner_city_id != current_user.city_id:
        abort(403)
    form = EntryForm()
    form.type_code.choices = type_choices()
    if existing is not None and not form.is_submitted():
        form.process(
            data={
                "external_id": existing.external_id,
                "type_code": existing.type_code,
                "grade": str(existing.grade or ""),
                "name": existing.name,
                "quantity": existing.on_hand,
                "lat": existing.lat,
                "lon": existing.lon,
                "place": existing.place,
                "status": existing.status if existing.status != "out_of_service" else "available",
                "contact_name": existing.contact_name,
                "contact_phone": existing.contact_phone,
                "personnel": existing.package_personnel,
                "daily_rate": existing.package_daily_rate,
                "self_sufficiency_hours": existing.package_self_sufficiency_hours,
                "mobilise_minutes": existing.package_mobilise_minutes,
            }
        )
    if form.validate_on_submit():
        try:
            aid.register_entry(db.session, current_actor(), _entry_from_form(form))
            db.session.commit()
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            flash(_("已保存并核实。"), "success")
            return redirect(url_for(".registry"))
    return render_template("mutual_aid/entry_form.html", form=form, existing=existing)


@bp.post("/aid/registry/import")
@login_required
def registry_import() -> ResponseReturnValue:
    """Import registry entries of the city from a CSV file (all rows or none)."""
    form = ImportForm()
    if not form.validate_on_submit():
        abort(400)
    text = form.file.data.read().decode("utf-8", errors="replace")
    try:
        entries = aid.entries_from_csv(
            text, owner=current_user.city.slug, verified_by=current_user.display_name, now=utcnow()
        )
        count = aid.import_entries(db.session, current_actor(), entries)
        db.session.commit()
    except ServiceError as exc:
        flash_refusal(exc)
    else:
        flash(_("已导入 %(count)d 条。", count=count), "success")
    return redirect(url_for(".registry"))
