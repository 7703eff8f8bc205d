"""API for filing daily and zero reports."""

from __future__ import annotations

from datetime import time

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from contracts.daily_reports import DailyReportCreate
from hub.app import settings_of
from hub.daily_reports import services as daily_reports
from hub.extensions import db
from web.api import params
from web.auth import api_auth, current_actor

bp = Blueprint("daily_reports_api", __name__, url_prefix="/api/v1")


@bp.post("/daily-reports")
@api_auth
def file_daily_report() -> ResponseReturnValue:
    """File today's daily or zero report for the caller's city."""
    data = params.json_body(DailyReportCreate)
    due: time = settings_of(current_app).daily_report_due_time
    report = daily_reports.submit(db.session, current_actor(), daily_reports.today(), data, due=due)
    db.session.commit()
    return jsonify(date=report.report_date.isoformat(), zero=report.zero, on_time=report.on_time), 201
