"""Verification requests, daily reports and the partner feed upsert."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from contracts.bulletin import DailyReportCreate, VerificationAnswerCreate, VerificationCreate
from hub.extensions import db
from hub.models import FeedState, PartnerRecord, Reminder
from hub.services import daily_reports, partners, verifications
from hub.services.actors import Actor
from hub.services.errors import Conflict, Forbidden, NotFound


def test_verification_request_answered_once_by_the_asked_city(make_user) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    request = verifications.create(
        db.session,
        linyi,
        VerificationCreate(
            to_city="xuzhou",
            subject="核实邳州段堤防险情",
            question="请核实邳州段堤防是否出现管涌。",
            deadline=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    db.session.commit()
    with pytest.raises(NotFound):
        verifications.get_for(db.session, Actor.for_user(make_user("hz", "heze")), request.public_id)
    with pytest.raises(Forbidden):
        verifications.answer(db.session, linyi, request.public_id, VerificationAnswerCreate(answer="自答"))
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    verifications.answer(
        db.session, xuzhou, request.public_id, VerificationAnswerCreate(answer="经核实，无管涌。")
    )
    with pytest.raises(Conflict):
        verifications.answer(db.session, xuzhou, request.public_id, VerificationAnswerCreate(answer="again"))
    assert verifications.owed_by(db.session, xuzhou.city_id) == []


def test_late_verification_is_reminded_then_flagged(make_user) -> None:
    request = verifications.create(
        db.session,
        Actor.for_user(make_user("ly", "linyi")),
        VerificationCreate(
            to_city="xuzhou",
            subject="核实",
            question="请核实。",
            deadline=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    request.deadline = datetime.now(UTC) - timedelta(minutes=1)
    assert verifications.chase_late(db.session) == {"reminded": 1, "flagged": 0}
    assert verifications.chase_late(db.session, flag_after=timedelta(0)) == {"reminded": 0, "flagged": 1}


def test_daily_report_once_a_day_and_missing_cities_reminded(make_user) -> None:
    day = daily_reports.today()
    linyi = Actor.for_user(make_user("ly", "linyi"))
    report = daily_reports.submit(db.session, linyi, day, DailyReportCreate(zero=True), due=time(23, 59))
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


def test_feed_page_applied_twice_changes_nothing(city) -> None:
    linyi = city("linyi")
    started = datetime.now(UTC)
    at = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    items = [partners.FeedItem(f"R{n}", at, {"name": f"冲锋舟{n}"}) for n in range(5)]
    assert partners.apply_page(db.session, linyi.id, "resources", items, "c5", run_started=started) == 5
    db.session.commit()
    assert partners.apply_page(db.session, linyi.id, "resources", items, "c5", run_started=started) == 0
    newer = [partners.FeedItem("R1", at + timedelta(seconds=1), {"name": "冲锋舟1（检修）"})]
    assert partners.apply_page(db.session, linyi.id, "resources", newer, "c6", run_started=started) == 1
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(PartnerRecord)) == 5
    state = db.session.scalars(select(FeedState)).one()
    assert (state.cursor, state.last_run_records) == ("c6", 6)
