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
from hub.daily_reports.models import DailyReport
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
                confirm_open_incidents=bool(form.confirm_open_incidents.data),
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
    city_id = current_user.city_id
    return render_template(
        "daily_reports/daily_reports.html",
        form=form,
        today=today,
        due=settings.daily_report_due,
        filed=daily_reports.has_filed(db.session, city_id, today) if city_id else False,
        open_incidents=daily_reports.open_incidents(db.session, city_id) if city_id else 0,
        grid=daily_reports.month_grid(db.session, year, month_number),
    )


@bp.get("/daily-reports/<int:report_id>")
@login_required
def daily_report_detail(report_id: int) -> ResponseReturnValue:
    """Show one filed report; its own city may correct it."""
    report = daily_reports.get_report(db.session, report_id)
    form = DailyReportForm(data={"zero": report.zero, "body": report.body})
    return _detail(report, form)


@bp.post("/daily-reports/<int:report_id>/correct")
@login_required
def daily_report_correct(report_id: int) -> ResponseReturnValue:
    """Correct a filed report of the person's city; other cities are refused (403)."""
    report = daily_reports.get_report(db.session, report_id)
    form = DailyReportForm()
    if form.validate_on_submit():
        try:
            daily_reports.correct(
                db.session,
                current_actor(),
                report_id,
                DailyReportCreate(zero=form.zero.data, body=form.body.data or ""),
                confirm_open_incidents=bool(form.confirm_open_incidents.data),
            )
        except ValidationError as exc:
            flash_validation(exc, form)
        except ServiceError as exc:
            flash_refusal(exc)
        else:
            db.session.commit()
            flash(_("报告已更正。"), "success")
            return redirect(url_for("daily_reports.daily_report_detail", report_id=report_id))
    return _detail(report, form)


def _detail(report: DailyReport, form: DailyReportForm) -> ResponseReturnValue:
    actor = current_actor()
    can_correct = daily_reports.can_correct(actor, report)
    return render_template(
        "daily_reports/daily_report.html",
        report=report,
        form=form,
        can_correct=can_correct,
        open_incidents=daily_reports.open_incidents(db.session, report.city_id) if can_correct else 0,
    )
