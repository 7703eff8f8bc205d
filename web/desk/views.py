"""A city's desk (值班台): what needs action first, then the capabilities' panels."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from hub.app import settings_of
from hub.extensions import db
from hub.kernel import desk

bp = Blueprint("dashboard", __name__)


def _live_context() -> dict[str, object]:
    city = current_user.city
    found = desk.for_city(db.session, city.id, settings_of(current_app))
    return {"city": city, "desk": found, **found.context}


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """Show the logged-in person's city dashboard."""
    return render_template("dashboard.html", **_live_context())


@bp.get("/dashboard/live")
@login_required
def live() -> ResponseReturnValue:
    """Return the live part of the dashboard, which the page polls."""
    return render_template("_dashboard_live.html", **_live_context())
