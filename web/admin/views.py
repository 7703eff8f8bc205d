"""The audit trail, and user management for hub administrators."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from hub.extensions import db
from hub.kernel import audit as audit_service
from hub.kernel import cities as city_service
from hub.kernel import dead_letters
from hub.kernel import users as user_service
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, ServiceError
from hub.kernel.models import AuditEntry, Role
from web import status as hub_status
from web.admin.audit_labels import ACTION_LABELS, action_choices, action_label, field_changes
from web.auth import admin_required, current_actor
from web.errors import flash_refusal
from web.forms import EmptyForm, PasswordResetForm, UserForm
from web.i18n import city_choices, city_name
from web.queries import csv_response, day_range, local_text, page_number, text

bp = Blueprint("admin", __name__)
AUDIT_EXPORT_LIMIT = 10_000

ROLE_LABELS = {
    Role.COORDINATOR: _l("协调员"),
    Role.DUTY_OFFICER: _l("值班员"),
    Role.OBSERVER: _l("观察员"),
    Role.ADMIN: _l("管理员"),
}


def _audit_filters(actor: Actor) -> audit_service.AuditFilter:
    """Read the trail's filters from the query string; everyone but an admin reads their own city."""
    city_id = actor.city_id
    if actor.is_admin:
        slug = request.args.get("city") or None
        city_id = city_service.by_slug(db.session, slug).id if slug else None
    action = request.args.get("action") or None
    if action is not None and action not in ACTION_LABELS:
        abort(400)
    since, until = day_range()
    return audit_service.AuditFilter(
        city_id=city_id, person=text("person"), action=action, since=since, until=until
    )


@bp.get("/audit")
@login_required
def audit() -> ResponseReturnValue:
    """Show the audit trail (the whole region for admins, the own city for everyone else), filtered
    by city, person, action and days, each change as its fields before and after."""
    actor = current_actor()
    filters = _audit_filters(actor)
    page = page_number()
    per_page = 100
    entries = audit_service.search(db.session, filters, limit=per_page, offset=(page - 1) * per_page)
    return render_template(
        "audit.html",
        entries=entries,
        total=audit_service.count(db.session, filters),
        page=page,
        per_page=per_page,
        cities=city_service.all_cities(db.session) if actor.is_admin else [],
        actions=action_choices(),
        action_label=action_label,
        field_changes=field_changes,
        args=request.args,
        filter_args={k: v for k, v in request.args.items() if k != "page" and v},
    )


@bp.get("/audit/export.csv")
@login_required
def audit_export() -> ResponseReturnValue:
    """Download the filtered trail as CSV (at most the newest 10,000 entries), times in the hub's zone."""
    entries = audit_service.search(db.session, _audit_filters(current_actor()), limit=AUDIT_EXPORT_LIMIT)
    kinds = {"user": _("人员"), "partner": _("对接平台"), "system": _("系统")}

    def changes(entry: AuditEntry) -> str:
        parts = []
        for c in field_changes(entry.before, entry.after):
            value = f"{c.before} → {c.after}" if c.before and c.after else c.before or c.after
            parts.append(f"{c.label}: {value}")
        return "; ".join(parts)

    header = [_("时间"), _("操作者"), _("操作者类型"), _("城市"), _("操作"), _("对象"), _("变更")]
    rows = (
        [
            local_text(e.at),
            e.actor,
            kinds.get(e.actor_kind, e.actor_kind),
            city_name(e.city) if e.city else "",
            action_label(e.action),
            f"{e.entity_type} #{e.entity_id}" if e.entity_id is not None else e.entity_type,
            changes(e),
        ]
        for e in entries
    )
    return csv_response(header, rows, "audit.csv")


def _user_form() -> UserForm:
    form = UserForm()
    form.city.choices = city_choices(city_service.all_cities(db.session))
    form.role.choices = [(r.value, str(ROLE_LABELS[r])) for r in Role]
    return form


@bp.route("/admin/users", methods=["GET", "POST"])
@admin_required
def users() -> ResponseReturnValue:
    """List users and create new ones."""
    form = _user_form()
    if form.validate_on_submit():
        try:
            user_service.create_user(
                db.session,
                current_actor(),
                username=form.username.data or "",
                display_name=form.display_name.data or "",
                password=form.password.data or "",
                city=city_service.by_slug(db.session, form.city.data or ""),
                role=Role(form.role.data),
            )
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("用户已创建。"), "success")
            return redirect(url_for("admin.users"))
    return render_template(
        "admin/users.html",
        form=form,
        users=user_service.list_users(db.session, current_actor()),
        action_form=EmptyForm(),
        role_labels=ROLE_LABELS,
    )


@bp.post("/admin/users/<int:user_id>/active")
@admin_required
def set_active(user_id: int) -> ResponseReturnValue:
    """Enable or disable an account."""
    form = EmptyForm()
    if form.validate_on_submit():
        active = request.form.get("active") == "1"
        try:
            user_service.set_active(db.session, current_actor(), user_id, active)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<int:user_id>/unlock")
@admin_required
def unlock(user_id: int) -> ResponseReturnValue:
    """Lift an account's lock-out after failed log-ins (audited)."""
    if EmptyForm().validate_on_submit():
        user_service.unlock(db.session, current_actor(), user_id)
        db.session.commit()
        flash(_("已解除锁定。"), "success")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<int:user_id>/password")
@admin_required
def reset_password(user_id: int) -> ResponseReturnValue:
    """Set a new password for an account (audited); its sessions end and any lock-out is lifted."""
    form = PasswordResetForm()
    if not form.validate_on_submit():
        flash(_("新密码至少 10 个字符。"), "error")
        return redirect(url_for("admin.users"))
    try:
        user_service.reset_password(db.session, current_actor(), user_id, form.password.data or "")
    except ServiceError as exc:
        flash_refusal(exc)
    else:
        db.session.commit()
        flash(_("密码已重置，该用户须用新密码重新登录。"), "success")
    return redirect(url_for("admin.users"))


@bp.get("/dead-letters")
@login_required
def dead_letter_list() -> ResponseReturnValue:
    """Show inbound messages that broke their contract: the city's own, or all to an administrator."""
    actor = current_actor()
    city_id = None if actor.is_admin else actor.city_id
    if city_id is None and not actor.is_admin:
        raise Forbidden("dead letters are read for a city")
    return render_template(
        "dead_letters.html",
        letters=dead_letters.recent(db.session, city_id=city_id),
        total=dead_letters.count(db.session, city_id=city_id),
    )


@bp.get("/status")
@login_required
def status() -> ResponseReturnValue:
    """Show each part of the running hub, up or down, and when it was last seen up."""
    return render_template(
        "status.html",
        components=hub_status.components(),
        nodes=hub_status.nodes(),
        bridges=hub_status.bridges(),
    )
