"""The web application: coordinator UI and JSON API on top of the hub's core app."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter, Map

from hub.app import create_core_app, write_intent
from hub.capabilities import all_capabilities, resolve
from hub.config import Settings
from hub.kernel.storage import free_bytes
from web import auth, errors, i18n, nav, status
from web import map as region_map
from web.admin import views as admin
from web.api import views as api
from web.desk import views as dashboard
from web.session import views as session_views

log = logging.getLogger(__name__)
csrf = CSRFProtect()

# Scripts and styles come only from /static (no inline code, so injected markup cannot run);
# the live panels fetch from the same origin; no page may be framed (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


# Logging in and out write a line or two; a duty officer must still get in to read the desk.
STORAGE_GUARD_EXEMPT = frozenset({"/login", "/logout"})


def _disk_nearly_full(settings: Settings) -> bool:
    """Tell whether the instance folder (database, broker files, attachments) is short of space."""
    return free_bytes(settings.instance_path) < settings.min_free_disk_mb * 1024 * 1024


class BoundedIntConverter(IntegerConverter):
    """An `<int:…>` URL part that fits a database integer: longer ones are simply not found."""

    # 0 … 2**31 - 1 in the pattern itself: a number that only fails `max` made Werkzeug answer 405
    # on a path whose GET and POST are two rules (it had seen the other method's rule match).
    regex = (
        r"(?:[0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
        r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])"
    )

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


# Views that take a file: their requests may be as large as the attachment limit allows.
UPLOAD_ENDPOINTS = frozenset({"incidents.attach"})
UPLOAD_FORM_OVERHEAD = 64 * 1024


def create_app(settings: Settings) -> Flask:
    """Build the hub's web application for the given settings."""
    app = create_core_app(settings, import_name="web")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_I18N_ENABLED=True,  # WTForms' own messages ("This field is required.") in the reader's language
    )
    app.url_map.converters["int"] = BoundedIntConverter  # before any rule is added

    @app.before_request
    def _allow_uploads() -> None:
        # Registered before CSRFProtect, whose check reads the form and so the whole body: an
        # upload gets the attachment limit (and room for the form around the file), every
        # other request keeps MAX_CONTENT_LENGTH.
        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = settings.attachment_max_bytes + UPLOAD_FORM_OVERHEAD

    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable in JSON
    csrf.init_app(app)
    auth.init_app(app)
    i18n.init_app(app, settings)
    errors.init_app(app)

    @app.before_request
    def _declare_writes() -> ResponseReturnValue | None:
        # Requests that change state (and bearer calls, which stamp their token) write.
        changes = request.method not in ("GET", "HEAD", "OPTIONS")
        if changes and request.path not in STORAGE_GUARD_EXEMPT and _disk_nearly_full(settings):
            return errors.storage_full()
        g.write_intent_token = write_intent.set(changes or "Authorization" in request.headers)
        return None

    headers = dict(SECURITY_HEADERS)
    if settings.map_tile_url:
        # The site's own tile server is the one place images may come from besides the hub.
        origin = urlsplit(settings.map_tile_url)
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "img-src 'self' data:", f"img-src 'self' data: {origin.scheme}://{origin.netloc}"
        )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    @app.teardown_request
    def _forget_writes(exc: BaseException | None) -> None:
        # Server threads serve request after request in one context: do not leak the flag.
        token = g.pop("write_intent_token", None)
        if token is not None:
            write_intent.reset(token)

    for blueprint in (session_views.bp, dashboard.bp, admin.bp, region_map.bp):
        app.register_blueprint(blueprint)
    # The API authenticates by bearer token, or by session with the CSRF header on writes.
    csrf.exempt(api.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(region_map.api_bp)
    app.register_blueprint(region_map.api_bp)
    for capability in all_capabilities():
        for target in capability.blueprints:
            app.register_blueprint(resolve(target))
        for target in capability.api_blueprints:
            blueprint = resolve(target)
            csrf.exempt(blueprint)
            app.register_blueprint(blueprint)
    nav.init_app(app)
    status.init_app(app)
    app.jinja_env.globals["map_tile_url"] = region_map.tile_url
    return app
