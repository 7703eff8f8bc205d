"""API for filing daily and zero reports."""

from __future__ import annotations

from datetime import date, time

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue

from contracts.daily_reports import DailyReportCreate
from hub.app import settings_of
from hub.daily_reports import services as daily_reports
from hub.extensions import db
from web.api.models import ErrorBody, Out
from web.api.spec import operation
from web.auth import api_auth, current_actor

bp = Blueprint("daily_reports_api", __name__, url_prefix="/api/v1")


class DailyReportFiled(Out):
    """The report as filed: for which day, whether it is a zero report, and whether it was on time."""

    date: date
    zero: bool
    on_time: bool


@bp.post("/daily-reports")
@api_auth
@operation(
    json=DailyReportCreate,
    tags=("daily_reports",),
    HTTP_201=(DailyReportFiled, "Filed"),
    HTTP_409=(ErrorBody, "Already filed today"),
)
def file_daily_report(body: DailyReportCreate) -> ResponseReturnValue:
    """File today's daily or zero report for the caller's city."""
    due: time = settings_of(current_app).daily_report_due_time
    report = daily_reports.submit(db.session, current_actor(), daily_reports.today(), body, due=due)
    db.session.commit()
    filed = DailyReportFiled(date=report.report_date, zero=report.zero, on_time=report.on_time)
    return filed.model_dump(mode="json"), 201
