"""Incident list, detail, recording and follow-up reports."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, ReportKind
from contracts.incidents import FollowUpCreate, IncidentCreate
from hub.app import settings_of
from hub.extensions import db
from hub.incidents import notifications as notification_service
from hub.incidents import services as incident_service
from hub.kernel import cities as city_service
from hub.kernel.errors import Forbidden, ServiceError
from web.auth import current_actor
from web.errors import flash_refusal, flash_validation
from web.forms import EmptyForm
from web.i18n import city_choices, city_name
from web.incidents.forms import (
    FollowUpForm,
    IncidentEditForm,
    IncidentForm,
    category_choices,
    level_choices,
    report_kind_choices,
    status_choices,
)
from web.kick import kick_flows
from web.queries import csv_response, day_range, local_text, page_number, text

if TYPE_CHECKING:
    from hub.incidents.models import Incident

bp = Blueprint("incidents", __name__, url_prefix="/incidents", template_folder="templates")


@bp.app_template_filter("city_names")
def city_names(slugs: list[str]) -> str:
    """Name the cities of a list of slugs in the reader's language (for what changed)."""
    found = city_service.by_slugs(db.session, list(slugs))
    zh = str(get_locale()).startswith("zh")
    return "、".join(c.name_zh for c in found) if zh else ", ".join(c.name_en for c in found)


# Notices live on the desk, outside the /incidents prefix.
notices = Blueprint("notifications", __name__)


def _filters() -> incident_service.IncidentFilter:
    """Read the list's filters from the query string; a value no list has is a 400."""
    args = request.args
    level = args.get("level") or None
    category = args.get("category") or None
    status = args.get("status") or None
    since, until = day_range()
    try:
        return incident_service.IncidentFilter(
            city=args.get("city") or None,
            level_at_most=IncidentLevel[level].value if level else None,
            category=IncidentCategory(category) if category else None,
            status=IncidentStatus(status) if status else None,
            since=since,
            until=until,
            person=text("person"),
            text=text("q"),
        )
    except (KeyError, ValueError):
        abort(400)


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """List incidents with filters (city, level, category, status, days, person, text), page by page."""
    page = incident_service.list_incidents(db.session, _filters(), page=page_number())
    return render_template(
        "incidents/list.html",
        page=page,
        cities=city_service.all_cities(db.session),
        categories=category_choices(),
        levels=level_choices(),
        args=request.args,
        filter_args={k: v for k, v in request.args.items() if k != "page" and v},
    )


@bp.get("/export.csv")
@login_required
def export() -> ResponseReturnValue:
    """Download the filtered list as CSV, times in the hub's zone."""
    incidents = incident_service.export_incidents(db.session, _filters())
    categories = dict(category_choices())
    statuses = dict(status_choices())
    header = [
        _("编号"), _("级别"), _("事件"), _("类别"), _("状态"), _("接报城市"), _("涉及城市"),
        _("地点"), _("发生时间"), _("接报时间"), _("接报人"), _("演练"),
    ]  # fmt: skip
    rows = (
        [
            i.id,
            IncidentLevel(i.level).roman,
            i.title,
            categories.get(i.category.value, i.category.value),
            statuses.get(i.status.value, i.status.value),
            city_name(i.reporting_city),
            _("、").join(city_name(c) for c in i.affected_cities),
            i.location,
            local_text(i.occurred_at),
            local_text(i.reported_at),
            i.created_by.display_name if i.created_by else "",
            _("是") if i.exercise else "",
        ]
        for i in incidents
    )
    return csv_response(header, rows, "incidents.csv")


def _fill_choices(form: IncidentForm) -> None:
    form.category.choices = category_choices()
    form.level.choices = level_choices()
    form.affected_cities.choices = city_choices(city_service.all_cities(db.session))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> ResponseReturnValue:
    """Record an incident for the person's own city."""
    if not current_actor().can_write_incidents:
        raise Forbidden("your role may not record incidents")
    form = IncidentForm()
    _fill_choices(form)
    if request.method == "GET":
        form.affected_cities.data = [current_user.city.slug]
        form.occurred_at.data = datetime.now(ZoneInfo(settings_of(current_app).timezone)).replace(
            second=0, microsecond=0, tzinfo=None
        )
    if form.validate_on_submit():
        zone = ZoneInfo(settings_of(current_app).timezone)
        try:
            data = IncidentCreate(
                category=form.category.data,
                level=form.level.data,
                title=form.title.data,
                description=form.description.data or "",
                location=form.location.data or "",
                latitude=form.latitude.data,
                longitude=form.longitude.data,
                occurred_at=form.occurred_at.data.replace(tzinfo=zone),
                affected_cities=form.affected_cities.data,
                exercise=form.exercise.data,
            )
            incident = incident_service.create_incident(db.session, current_actor(), data)
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            kick_flows(current_app)
            flash(_("事件已接报。"), "success")
            return redirect(url_for("incidents.detail", incident_id=incident.id))
    return render_template("incidents/new.html", form=form), 422 if form.errors else 200


def _edit_form(incident: Incident | None = None) -> IncidentEditForm:
    form = IncidentEditForm()
    form.level.choices = level_choices()
    form.status.choices = status_choices()
    form.affected_cities.choices = city_choices(city_service.all_cities(db.session))
    if incident is not None and not form.is_submitted():
        form.level.data = IncidentLevel(incident.level).roman
        form.status.data = incident.status.value
        form.affected_cities.data = [c.slug for c in incident.affected_cities]
    return form


@bp.get("/<int:incident_id>")
@login_required
def detail(incident_id: int) -> ResponseReturnValue:
    """Show an incident with its reports and who was notified."""
    incident = incident_service.get_incident(db.session, incident_id)
    form = FollowUpForm()
    form.kind.choices = report_kind_choices()
    actor = current_actor()
    return render_template(
        "incidents/detail.html",
        incident=incident,
        form=form,
        edit_form=_edit_form(incident),
        can_edit=actor.can_write_incidents and actor.city_id == incident.reporting_city_id,
        notified=notification_service.told(db.session, incident.id),
    )


@bp.post("/<int:incident_id>/edit")
@login_required
def edit(incident_id: int) -> ResponseReturnValue:
    """Change level, status or affected cities; a change that now qualifies notifies the neighbours."""
    form = _edit_form()
    if not form.validate_on_submit():
        flash(_("请选择级别、状态和涉及城市。"), "error")
        return redirect(url_for("incidents.detail", incident_id=incident_id))
    changes = incident_service.IncidentChanges(
        level=IncidentLevel[form.level.data or "IV"],
        status=IncidentStatus(form.status.data),
        affected_cities=tuple(form.affected_cities.data or ()),
    )
    incident_service.update_incident(db.session, current_actor(), incident_id, changes)
    db.session.commit()
    kick_flows(current_app)
    flash(_("事件已更新。"), "success")
    return redirect(url_for("incidents.detail", incident_id=incident_id))


@bp.post("/<int:incident_id>/reports")
@login_required
def add_report(incident_id: int) -> ResponseReturnValue:
    """Add a follow-up or final report."""
    form = FollowUpForm()
    form.kind.choices = report_kind_choices()
    if not form.validate_on_submit():
        flash(_("请填写报告内容。"), "error")
        return redirect(url_for("incidents.detail", incident_id=incident_id))
    try:
        data = FollowUpCreate(kind=ReportKind(form.kind.data), body=form.body.data)
    except ValidationError as exc:
        flash("; ".join(e["msg"] for e in exc.errors()), "error")
        return redirect(url_for("incidents.detail", incident_id=incident_id))
    incident_service.add_report(db.session, current_actor(), incident_id, data)
    db.session.commit()
    flash(_("报告已提交。"), "success")
    return redirect(url_for("incidents.detail", incident_id=incident_id))


@notices.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int) -> ResponseReturnValue:
    """Acknowledge a notification as read by the duty desk."""
    if EmptyForm().validate_on_submit():
        notification_service.mark_read(db.session, current_actor(), notification_id)
        db.session.commit()
    return redirect(url_for("dashboard.index"))
