"""Incident list, detail, recording and follow-up reports."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, ReportKind
from contracts.incidents import FollowUpCreate, IncidentCreate
from hub.app import settings_of
from hub.extensions import db
from hub.fleet import areas as area_service
from hub.incidents import attachments as attachment_service
from hub.incidents import dispatch as dispatch_service
from hub.incidents import notifications as notification_service
from hub.incidents import services as incident_service
from hub.incidents import timeline as timeline_service
from hub.kernel import cities as city_service
from hub.kernel.errors import Forbidden, InvalidInput, ServiceError
from hub.kernel.types import utcnow
from web.auth import current_actor
from web.errors import HTML_MESSAGES, error_response, flash_refusal, flash_validation
from web.forms import EmptyForm
from web.i18n import city_choices, city_name
from web.incidents.forms import (
    AreaForm,
    AttachmentForm,
    DispatchForm,
    FollowUpForm,
    IncidentEditForm,
    IncidentForm,
    category_choices,
    level_choices,
    report_kind_choices,
    status_choices,
)
from web.kick import kick_flows, kick_mqtt
from web.queries import csv_response, day_range, local_text, page_number, text

if TYPE_CHECKING:
    from hub.incidents.models import Incident

bp = Blueprint("incidents", __name__, url_prefix="/incidents", template_folder="templates")


@bp.app_template_filter("fulltime")
def fulltime(value: datetime | None) -> str:
    """Show a time in the hub's zone (Asia/Shanghai) with its date, as a printed report needs it."""
    return format_datetime(value, "yyyy-MM-dd HH:mm") if value is not None else ""


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
                source=form.source.data or "",
                nature=form.nature.data or "",
                **_situation(form),
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


class _Situation(TypedDict):
    extent: str
    trend: str
    measures: str
    deaths: int | None
    injured: int | None
    missing: int | None


def _situation(form: IncidentForm | FollowUpForm) -> _Situation:
    """Return the standard report's situation fields as a contract takes them."""
    return {
        "extent": form.extent.data or "",
        "trend": form.trend.data or "",
        "measures": form.measures.data or "",
        "deaths": form.deaths.data,
        "injured": form.injured.data,
        "missing": form.missing.data,
    }


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
    involved = {incident.reporting_city_id, *(c.id for c in incident.affected_cities)}
    dispatch_form = DispatchForm()
    dispatch_form.vehicle.choices = dispatch_service.vehicles_to_send(db.session, actor)
    return render_template(
        "incidents/detail.html",
        incident=incident,
        form=form,
        edit_form=_edit_form(incident),
        attachment_form=AttachmentForm(),
        dispatch_form=dispatch_form,
        area_form=AreaForm(),
        watched=area_service.active_for_incident(db.session, incident.id),
        can_edit=actor.can_write_incidents and actor.city_id == incident.reporting_city_id,
        can_attach=actor.can_write_incidents and actor.city_id in involved,
        notified=notification_service.told(db.session, incident.id),
        story=timeline_service.story(db.session, actor, incident),
        attachment_types=", ".join(attachment_service.ALLOWED_EXTENSIONS),
        attachment_limit=size_text(settings_of(current_app).attachment_max_bytes),
        printed_at=utcnow(),
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
        data = FollowUpCreate(
            kind=ReportKind(form.kind.data),
            body=form.body.data,
            location=form.location.data or "",
            latitude=form.latitude.data,
            longitude=form.longitude.data,
            **_situation(form),
        )
    except ValidationError as exc:
        flash_validation(exc, form)
        return redirect(url_for("incidents.detail", incident_id=incident_id))
    incident_service.add_report(db.session, current_actor(), incident_id, data)
    db.session.commit()
    flash(_("报告已提交。"), "success")
    return redirect(url_for("incidents.detail", incident_id=incident_id))


def size_text(size: int) -> str:
    """Say a size in bytes as people read it: 10 MB, 500 KB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{max(1, round(size / 1024))} KB"


def _attachment_refusal(exc: InvalidInput) -> str:
    """Say why a file was refused, in the reader's language."""
    settings = settings_of(current_app)
    if exc.reason == "attachment_too_large":
        return _("文件过大：最大 %(limit)s。", limit=size_text(settings.attachment_max_bytes))
    if exc.reason == "attachment_type":
        return _(
            "不支持的文件类型：仅接受照片（JPEG、PNG、WebP）和文件（PDF、Word、Excel），且内容须与扩展名相符。"
        )
    if exc.reason == "attachment_empty":
        return _("文件为空。")
    return exc.message


@bp.post("/<int:incident_id>/attachments")
@login_required
def attach(incident_id: int) -> ResponseReturnValue:
    """Attach a photo or document; a wrong type or an oversized file is refused and nothing is kept."""
    form = AttachmentForm()
    back = redirect(url_for("incidents.detail", incident_id=incident_id, _anchor="attachments"))
    upload = request.files.get("file")
    if not form.validate_on_submit() or upload is None or not upload.filename:
        flash(_("请选择要上传的文件。"), "error")
        return back
    settings = settings_of(current_app)
    # One byte past the limit is enough to know the file is too large.
    data = upload.stream.read(settings.attachment_max_bytes + 1)
    try:
        attachment = attachment_service.attach(
            db.session,
            current_actor(),
            incident_id,
            upload.filename,
            data,
            max_bytes=settings.attachment_max_bytes,
        )
    except InvalidInput as exc:
        db.session.rollback()
        flash(_attachment_refusal(exc), "error")
        return back
    stored = attachment_service.store(settings.instance_path, attachment, data)
    try:
        db.session.commit()
    except Exception:
        stored.unlink(missing_ok=True)
        raise
    flash(_("附件已上传。"), "success")
    return back


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """Refuse an oversized upload with the limit, back on the incident; other pages keep the 413 page."""
    if request.endpoint != "incidents.attach" or request.view_args is None:
        return error_response(413, "payload_too_large", str(HTML_MESSAGES[413]))
    flash(_attachment_refusal(InvalidInput("too large", reason="attachment_too_large")), "error")
    return redirect(url_for("incidents.detail", incident_id=request.view_args["incident_id"]))


@bp.get("/<int:incident_id>/attachments/<int:attachment_id>")
@login_required
def attachment(incident_id: int, attachment_id: int) -> ResponseReturnValue:
    """Serve an attachment to whoever may see the incident: images shown, documents downloaded."""
    found = attachment_service.get_for(db.session, current_actor(), incident_id, attachment_id)
    path = attachment_service.path_of(settings_of(current_app).instance_path, found)
    response = send_file(
        path,
        mimetype=found.content_type,
        as_attachment=not found.content_type.startswith("image/"),
        download_name=found.filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:incident_id>/dispatch")
@login_required
def dispatch(incident_id: int) -> ResponseReturnValue:
    """Send one of the person's city's vehicles to the incident's place."""
    form = DispatchForm()
    form.vehicle.choices = dispatch_service.vehicles_to_send(db.session, current_actor())
    back = redirect(url_for("incidents.detail", incident_id=incident_id, _anchor="story"))
    if not form.validate_on_submit():
        flash(_("请选择车辆。"), "error")
        return back
    try:
        dispatch_service.send_vehicle(
            db.session,
            current_actor(),
            incident_id,
            form.vehicle.data,
            root=settings_of(current_app).mqtt_root,
            note=form.note.data or "",
        )
    except ServiceError as exc:
        flash_refusal(exc)
        return back
    db.session.commit()
    kick_mqtt(current_app)
    flash(_("已派车前往事发地点，等待车辆回执。"), "success")
    return back


@bp.post("/<int:incident_id>/area")
@login_required
def watch_area(incident_id: int) -> ResponseReturnValue:
    """Watch a circle around the incident's place for vehicles entering or leaving it."""
    form = AreaForm()
    back = redirect(url_for("incidents.detail", incident_id=incident_id, _anchor="area"))
    if not form.validate_on_submit() or form.radius_m.data is None:
        flash(_("半径须在 100 至 50000 米之间。"), "error")
        return back
    try:
        dispatch_service.watch_area(db.session, current_actor(), incident_id, float(form.radius_m.data))
    except ServiceError as exc:
        flash_refusal(exc)
        return back
    db.session.commit()
    flash(_("已设置监视区域：车辆进出时将提示本市值班台。"), "success")
    return back


@notices.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int) -> ResponseReturnValue:
    """Acknowledge a notification as read by the duty desk."""
    if EmptyForm().validate_on_submit():
        notification_service.mark_read(db.session, current_actor(), notification_id)
        db.session.commit()
    return redirect(url_for("dashboard.index"))
