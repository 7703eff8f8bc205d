"""API for filing daily and zero reports."""

from __future__ import annotations

from datetime import date, time

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue
from pydantic import Field

from contracts.daily_reports import DailyReportCreate
from hub.app import settings_of
from hub.daily_reports import services as daily_reports
from hub.extensions import db
from web.api.models import ErrorBody, Out
from web.api.params import Query, QueryBool
from web.api.spec import operation
from web.auth import api_auth, current_actor

bp = Blueprint("daily_reports_api", __name__, url_prefix="/api/v1")


class DailyReportFiled(Out):
    """The report as filed: for which day, whether it is a zero report, and whether it was on time."""

    date: date
    zero: bool
    on_time: bool


class DailyReportQuery(Query):
    """The caller's confirmation that goes with a report."""

    confirm_open_incidents: QueryBool = Field(
        False, description="file a zero report although the city has open live incidents"
    )


@bp.post("/daily-reports")
@api_auth
@operation(
    query=DailyReportQuery,
    json=DailyReportCreate,
    tags=("daily_reports",),
    HTTP_201=(DailyReportFiled, "Filed"),
    HTTP_409=(ErrorBody, "Already filed today"),
)
def file_daily_report(query: DailyReportQuery, body: DailyReportCreate) -> ResponseReturnValue:
    """File today's daily or zero report for the caller's city.

    A zero report while the city has open live incidents is refused (422, with the
    number of open incidents in the details) unless `confirm_open_incidents` is true.
    """
    due: time = settings_of(current_app).daily_report_due_time
    report = daily_reports.submit(
        db.session,
        current_actor(),
        daily_reports.today(),
        body,
        due=due,
        confirm_open_incidents=query.confirm_open_incidents,
    )
    db.session.commit()
    filed = DailyReportFiled(date=report.report_date, zero=report.zero, on_time=report.on_time)
    return filed.model_dump(mode="json"), 201
