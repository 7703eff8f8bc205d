"""Daily and zero reports (日报告/零报告) in the UI, with the month grid."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required
from pydantic import ValidationError

from contracts.daily_reports import DailyReportCreate
from hub.app import settings_of
from hub.daily_reports import services as daily_reports
from hub.extensions import db
from hub.kernel.errors import ServiceError
from web import queries
from web.auth import current_actor
from web.daily_reports.forms import DailyReportForm
from web.errors import flash_refusal, flash_validation

bp = Blueprint("daily_reports", __name__, template_folder="templates")


# Daily reports ---------------------------------------------------------------------------------


@bp.route("/daily-reports", methods=["GET", "POST"])
@login_required
def daily_report_page() -> ResponseReturnValue:
    """File today's report and show the month grid of who reported on time."""
    settings = settings_of(current_app)
    form = DailyReportForm()
    today = daily_reports.today()
    if form.validate_on_submit():
        try:
            daily_reports.submit(
                db.session,
                current_actor(),
                today,
                DailyReportCreate(zero=form.zero.data, body=form.body.data or ""),
                due=settings.daily_report_due_time,
            )
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("今日报告已报送。"), "success")
            return redirect(url_for("daily_reports.daily_report_page"))
    year, month_number = queries.month("month", today)
    return render_template(
        "daily_reports/daily_reports.html",
        form=form,
        today=today,
        due=settings.daily_report_due,
        filed=daily_reports.has_filed(db.session, current_user.city_id, today),
        grid=daily_reports.month_grid(db.session, year, month_number),
    )
