"""A city's dashboard: what needs action first, then the region at a glance."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from hub.app import settings_of
from hub.extensions import db
from hub.services import bulletins, daily_reports, verifications
from hub.services import cities as city_service
from hub.services import incidents as incident_service
from hub.services import notifications as notification_service
from web.auth import current_actor
from web.forms import EmptyForm
from web.map import region_map

bp = Blueprint("dashboard", __name__)


def _live_context() -> dict[str, object]:
    city = current_user.city
    notifications = notification_service.for_city(db.session, city.id, limit=30)
    urgent = [n for n in notifications if n.read_at is None and n.incident.level <= 2]
    page = incident_service.list_incidents(
        db.session, incident_service.IncidentFilter(city=city.slug, open_only=True), per_page=20
    )
    all_cities = city_service.all_cities(db.session)
    regional = incident_service.list_incidents(
        db.session, incident_service.IncidentFilter(open_only=True), per_page=100
    ).items
    today = daily_reports.today()
    return {
        "owed_receipts": bulletins.owed_receipts(db.session, city.id),
        "owed_answers": verifications.owed_by(db.session, city.id),
        "report_missing": not daily_reports.has_filed(db.session, city.id, today),
        "report_due": daily_reports.due_at(today, settings_of(current_app).daily_report_due_time),
        "flagged": bulletins.flagged_for_issuer(db.session, city.id),
        "awaiting_answers": [
            r
            for r in verifications.for_city(db.session, city.id)
            if r.from_city_id == city.id and r.answered_at is None
        ],
        "map_svg": region_map(all_cities, city, regional),
        "city": city,
        "notifications": notifications,
        "urgent": urgent,
        "unread": sum(1 for n in notifications if n.read_at is None),
        "open_incidents": page.items,
        "counts": incident_service.open_counts_by_level(db.session, city),
    }


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    """Show the logged-in person's city dashboard."""
    return render_template("dashboard.html", **_live_context())


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int) -> ResponseReturnValue:
    """Acknowledge a notification as read by the duty desk."""
    if EmptyForm().validate_on_submit():
        notification_service.mark_read(db.session, current_actor(), notification_id)
        db.session.commit()
    return redirect(url_for("dashboard.index"))


@bp.get("/dashboard/live")
@login_required
def live() -> ResponseReturnValue:
    """Return the live part of the dashboard, which the page polls."""
    return render_template("_dashboard_live.html", **_live_context())
