"""A city's desk (值班台): what needs action first, then the capabilities' panels.

The page shows the live part once; then the server pushes it again whenever the city's desk
changes (`/dashboard/events`, Server-Sent Events woken by `web.desk.live`), and the page polls
`/dashboard/live` only while it cannot hold a stream. Both answer 401 once the session has ended,
so the page can send the person to log in again and back.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from hub.app import settings_of
from hub.extensions import db
from hub.kernel import acknowledgements, cities, desk
from web.auth import current_actor
from web.desk import live as desk_live
from web.forms import EmptyForm

bp = Blueprint("dashboard", __name__)


def _live_context(city_id: int) -> dict[str, object]:
    """The live part's context, with the capabilities' panels rendered (or reused) in it."""
    settings = settings_of(current_app)
    city = cities.by_id(db.session, city_id)
    kept_panels = desk_live.watcher(current_app._get_current_object()).panels  # type: ignore[attr-defined]
    # A panel shows times as "HH:mm" today and with the date on other days: a new day re-renders.
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    csrf_token = generate_csrf()

    def where(capability: str) -> tuple[Hashable, ...]:
        # One render kept per place: the day is part of the token, so a new day replaces it.
        return (capability, city_id, current_user.role, str(get_locale()))

    held: dict[str, str] = {}

    def kept(capability: str, token: Hashable) -> bool:
        html = kept_panels.get(where(capability), (token, today), csrf_token)
        if html is not None:
            held[capability] = html
        return html is not None

    found = desk.for_city(db.session, city.id, settings, kept=kept)
    context = {"city": city, "desk": found, **found.context}
    panels = []
    for group in found.panels:
        html = held.get(group.capability) if group.kept else None
        if html is None:
            html = "".join(render_template(template, **context) for template in group.templates)
            if group.token is not None:
                kept_panels.put(where(group.capability), (group.token, today), html, csrf_token)
        panels.append(Markup(html))  # noqa: S704  # our own templates' output, escaped by them
    return {**context, "panels": panels}


def _session_ended() -> Response:
    return desk_live.session_ended()


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """Show the logged-in person's city dashboard."""
    return render_template("dashboard.html", **_live_context(current_user.city_id))


@bp.get("/dashboard/live")
def live() -> ResponseReturnValue:
    """Return the live part of the dashboard (polled while no stream can be held)."""
    if not current_user.is_authenticated:
        return _session_ended()
    return render_template("_dashboard_live.html", **_live_context(current_user.city_id))


@bp.get("/dashboard/events")
def events() -> ResponseReturnValue:
    """Push the live part of the dashboard whenever the city's desk changes (text/event-stream)."""
    if not current_user.is_authenticated:
        return _session_ended()
    city_id = current_user.city_id

    def render() -> str:
        return render_template("_dashboard_live.html", **_live_context(city_id))

    return desk_live.stream_response(
        city_id, current_user.get_id(), render, "desk", shared_as=(current_user.role, str(get_locale()))
    )


@bp.post("/dashboard/acknowledge")
@login_required
def acknowledge() -> ResponseReturnValue:
    """Record that a person of the city saw an urgent item; the desk shows who and when."""
    if EmptyForm().validate_on_submit():
        acknowledgements.acknowledge(db.session, current_actor(), request.form.get("key", ""))
        db.session.commit()
    return redirect(url_for("dashboard.index"))
