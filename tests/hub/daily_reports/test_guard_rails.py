"""A zero report asks for confirmation while incidents are open; a filed report can be corrected."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import select

from contracts.daily_reports import DailyReportCreate
from hub.daily_reports import services as daily_reports
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput
from hub.kernel.models import AuditEntry

DUE = time(23, 59)


def test_zero_report_refused_while_incidents_open_unless_confirmed(make_user, make_incident) -> None:
    make_incident("linyi")
    make_incident("linyi")
    linyi = Actor.for_user(make_user("ly", "linyi"))
    day = daily_reports.today()
    with pytest.raises(InvalidInput) as refused:
        daily_reports.submit(db.session, linyi, day, DailyReportCreate(zero=True), due=DUE)
    assert refused.value.reason == "zero_report_open_incidents"
    assert refused.value.details == {"count": 2}
    assert not daily_reports.has_filed(db.session, linyi.city_id, day)
    report = daily_reports.submit(
        db.session, linyi, day, DailyReportCreate(zero=True), due=DUE, confirm_open_incidents=True
    )
    assert report.zero
    # A city without open incidents files its zero report without a question.
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    assert daily_reports.submit(db.session, xuzhou, day, DailyReportCreate(zero=True), due=DUE).zero


def test_correcting_keeps_the_old_text_in_the_audit_trail(make_user) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    report = daily_reports.submit(
        db.session, linyi, daily_reports.today(), DailyReportCreate(body="汛情平稳。"), due=DUE
    )
    daily_reports.correct(db.session, linyi, report.id, DailyReportCreate(body="汛情平稳，沂河水位回落。"))
    db.session.commit()
    assert daily_reports.get_report(db.session, report.id).body == "汛情平稳，沂河水位回落。"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "daily_report.corrected")).one()
    assert entry.before == {"zero": False, "body": "汛情平稳。"}
    assert entry.after == {"zero": False, "body": "汛情平稳，沂河水位回落。"}


def test_other_cities_may_not_correct(make_user) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    report = daily_reports.submit(
        db.session, linyi, daily_reports.today(), DailyReportCreate(body="平稳。"), due=DUE
    )
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    with pytest.raises(Forbidden):
        daily_reports.correct(db.session, xuzhou, report.id, DailyReportCreate(body="改"))
    assert report.body == "平稳。"
