"""Verification requests, daily reports and the partner feed upsert."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select

from contracts.daily_reports import DailyReportCreate
from hub.daily_reports import services as daily_reports
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict
from hub.kernel.models import Reminder


def test_daily_report_once_a_day_and_missing_cities_reminded(make_user) -> None:
    day = daily_reports.today()
    linyi = Actor.for_user(make_user("ly", "linyi"))
    # Due at the very end of the day: a run in its last minute is still on time.
    report = daily_reports.submit(db.session, linyi, day, DailyReportCreate(zero=True), due=time.max)
    assert report.on_time
    with pytest.raises(Conflict):
        daily_reports.submit(db.session, linyi, day, DailyReportCreate(zero=True), due=time(23, 59))
    with pytest.raises(ValueError, match="zero report"):
        DailyReportCreate(zero=False, body="")
    missing = daily_reports.remind_missing(db.session, day)
    assert "linyi" not in missing and len(missing) == 9
    daily_reports.remind_missing(db.session, day)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Reminder)) == 9
    grid = daily_reports.month_grid(db.session, day.year, day.month)
    linyi_row = next(cells for city, cells in grid.rows if city.slug == "linyi")
    assert linyi_row[day.day - 1] == "zero"


def test_late_daily_report_is_marked_late(make_user) -> None:
    yesterday = daily_reports.today() - timedelta(days=1)
    report = daily_reports.submit(
        db.session,
        Actor.for_user(make_user("ly", "linyi")),
        yesterday,
        DailyReportCreate(body="昨日无突发事件，汛情平稳。"),
        due=time(17, 0),
    )
    assert not report.on_time
    with pytest.raises(Exception, match="future"):
        daily_reports.submit(
            db.session,
            Actor.for_user(make_user("xz", "xuzhou")),
            daily_reports.today() + timedelta(days=1),
            DailyReportCreate(zero=True),
            due=time(17),
        )
    assert isinstance(yesterday, date)
