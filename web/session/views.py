"""Log-in, log-out and the language switch."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from hub.app import settings_of
from hub.extensions import db
from hub.kernel import auth as auth_service
from hub.kernel.errors import AuthenticationFailed
from web.forms import EmptyForm, LoginForm
from web.i18n import LOCALES

bp = Blueprint("session", __name__)


def _refuse_control_characters(target: str | None) -> None:
    # CR/LF would split the Location header; no local path has control characters anyway.
    if target and any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        abort(400, description=_("跳转地址含有控制字符，已拒绝。"))


def _safe_next(target: str | None) -> str:
    # Only follow local paths, so a crafted link cannot send a fresh log-in elsewhere. Browsers read
    # "/\\host" like "//host", so a backslash is refused too.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the log-in form and log a person in."""
    _refuse_control_characters(request.args.get("next"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        settings = settings_of(current_app)
        try:
            user = auth_service.authenticate(
                db.session,
                form.username.data or "",
                form.password.data or "",
                max_failures=settings.login_max_failures,
                lockout=timedelta(seconds=settings.login_lockout_seconds),
            )
        except AuthenticationFailed:
            db.session.commit()  # keep the failure count
            # One message for every refusal: a locked account must not confirm that the name exists.
            flash(_("用户名或密码错误。若多次失败，账户将暂时锁定，请稍后再试或联系管理员。"), "error")
            status = 401
        else:
            db.session.commit()
            session.clear()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Log the person out."""
    EmptyForm().validate_on_submit()
    locale = session.get("locale")
    auth_service.end_sessions(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    return redirect(url_for("session.login"))


@bp.post("/locale/<code>")
def set_locale(code: str) -> ResponseReturnValue:
    """Switch the interface language."""
    form = EmptyForm()
    if form.validate_on_submit() and code in LOCALES:
        session["locale"] = code
    _refuse_control_characters(request.form.get("next"))
    return redirect(_safe_next(request.form.get("next")))
