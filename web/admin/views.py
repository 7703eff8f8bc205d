"""The audit trail, and user management for hub administrators."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from hub.extensions import db
from hub.kernel import audit as audit_service
from hub.kernel import cities as city_service
from hub.kernel import dead_letters
from hub.kernel import users as user_service
from hub.kernel.errors import ServiceError
from hub.kernel.models import Role
from web import status as hub_status
from web.auth import admin_required, current_actor
from web.errors import flash_refusal
from web.forms import EmptyForm, PasswordResetForm, UserForm
from web.i18n import city_choices
from web.queries import page_number

bp = Blueprint("admin", __name__)

ROLE_LABELS = {
    Role.COORDINATOR: _l("协调员"),
    Role.DUTY_OFFICER: _l("值班员"),
    Role.OBSERVER: _l("观察员"),
    Role.ADMIN: _l("管理员"),
}


@bp.get("/audit")
@login_required
def audit() -> ResponseReturnValue:
    """Show the audit trail: the whole region for admins, the own city for everyone else."""
    actor = current_actor()
    page = page_number()
    per_page = 100
    entries = audit_service.recent(
        db.session,
        city_id=None if actor.is_admin else actor.city_id,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return render_template("audit.html", entries=entries, page=page, per_page=per_page)


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
    """Show inbound messages that broke their contract."""
    return render_template(
        "dead_letters.html", letters=dead_letters.recent(db.session), total=dead_letters.count(db.session)
    )


@bp.get("/status")
@login_required
def status() -> ResponseReturnValue:
    """Show each part of the running hub, up or down, and when it was last seen up."""
    return render_template("status.html", components=hub_status.components(), nodes=hub_status.nodes())
