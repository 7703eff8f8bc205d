"""The partner platforms' sync health page, their synced records, and a sync on demand."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from hub.extensions import db
from hub.kernel import cities as city_service
from hub.kernel.types import utcnow
from hub.partners import services as partners
from web.auth import current_actor
from web.forms import EmptyForm
from web.kick import kick_flows

bp = Blueprint("partners", __name__, template_folder="templates")


# Partner sync health ---------------------------------------------------------------------------


@bp.get("/partners")
@login_required
def partner_health() -> ResponseReturnValue:
    """Show each city's platform sync: last success, lag, last error, records in the last run."""
    return render_template(
        "partners/partners.html", health=partners.health(db.session), now=utcnow(), form=EmptyForm()
    )


@bp.get("/partners/<slug>/<feed>")
@login_required
def partner_records(slug: str, feed: str) -> ResponseReturnValue:
    """Show what a city's platform has shared in one feed, newest change first."""
    if feed not in partners.FEEDS:
        abort(404)
    city = city_service.by_slug(db.session, slug)
    return render_template(
        "partners/partner_records.html",
        city=city,
        feed=feed,
        records=partners.records(db.session, city.id, feed),
    )


@bp.post("/partners/<slug>/sync")
@login_required
def partner_sync_now(slug: str) -> ResponseReturnValue:
    """Ask for an immediate sync of one city's platform."""
    if EmptyForm().validate_on_submit():
        actor = current_actor()
        if not (
            actor.is_admin
            or (actor.can_write_incidents and city_service.by_slug(db.session, slug).id == actor.city_id)
        ):
            abort(403)
        partners.platform_for(db.session, slug)
        partners.request_sync(db.session, slug, f"manual-{uuid.uuid4()}")
        db.session.commit()
        kick_flows(current_app)
        flash(_("已开始同步。"), "success")
    return redirect(url_for("partners.partner_health"))
