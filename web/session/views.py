"""Log-in, log-out and the language switch."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
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
from flask_login import login_required, login_user, logout_user

from hub.app import settings_of
from hub.extensions import db
from hub.kernel import auth as auth_service
from hub.kernel.errors import AuthenticationFailed
from web.forms import EmptyForm, LoginForm
from web.i18n import LOCALES

bp = Blueprint("session", __name__)


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
        except AuthenticationFailed as exc:
            db.session.commit()  # keep the failure count
            locked = exc.details is not None
            flash(
                _("账户因多次登录失败已暂时锁定，请稍后再试或联系管理员。")
                if locked
                else _("用户名或密码错误。"),
                "error",
            )
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
    return redirect(_safe_next(request.form.get("next")))
