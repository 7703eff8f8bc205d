"""Daily and zero reports (日报告/零报告): one per city per day, checked at a set time."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contracts.daily_reports import DailyReportCreate
from hub.daily_reports.models import DailyReport
from hub.incidents import services as incidents
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.kernel.models import City, Reminder
from hub.kernel.types import DbSession, utcnow

if TYPE_CHECKING:
    from hub.config import Settings

ZONE = ZoneInfo("Asia/Shanghai")
CHECK = "check-daily-reports"


def today(now: datetime | None = None) -> date:
    """Return today's date in Asia/Shanghai, the day reports are counted by."""
    return (now or utcnow()).astimezone(ZONE).date()


def due_at(day: date, due: time) -> datetime:
    """Return when the report for `day` is due, as an aware time."""
    return datetime.combine(day, due, tzinfo=ZONE)


def open_incidents(session: DbSession, city_id: int) -> int:
    """Return how many open live incidents concern a city (drills never count)."""
    return sum(incidents.open_counts_by_level(session, cities.by_id(session, city_id)).values())


def _check_zero(session: DbSession, city_id: int, data: DailyReportCreate, confirmed: bool) -> None:
    """A zero report while the city has open incidents needs the person's explicit confirmation."""
    if not data.zero or confirmed:
        return
    count = open_incidents(session, city_id)
    if count:
        raise InvalidInput(
            f"the city has {count} open incident(s); confirm to file a zero report anyway",
            reason="zero_report_open_incidents",
            details={"count": count},
        )


def submit(
    session: DbSession,
    actor: Actor,
    day: date,
    data: DailyReportCreate,
    *,
    due: time,
    confirm_open_incidents: bool = False,
) -> DailyReport:
    """File the actor's city's report for a day (today or an earlier day, once).

    A zero report while the city has open live incidents is refused unless
    `confirm_open_incidents` says the person confirmed it.
    """
    if not actor.can_write_incidents or actor.city_id is None:
        raise Forbidden("only coordinators and duty officers of a city file daily reports")
    now = utcnow()
    if day > today(now):
        raise InvalidInput("a daily report cannot be filed for a future day", reason="report_future_day")
    existing = session.scalar(
        select(DailyReport).where(DailyReport.city_id == actor.city_id, DailyReport.report_date == day)
    )
    if existing is not None:
        raise Conflict(f"the report for {day.isoformat()} has already been filed", reason="report_filed")
    _check_zero(session, actor.city_id, data, confirm_open_incidents)
    report = DailyReport(
        city_id=actor.city_id,
        report_date=day,
        zero=data.zero,
        body=data.body,
        submitted_at=now,
        submitted_by=actor.name,
        on_time=now <= due_at(day, due),
    )
    session.add(report)
    session.flush()
    audit.record(
        session,
        actor,
        "daily_report.filed",
        "daily_report",
        report.id,
        after={"date": day.isoformat(), "zero": data.zero, "on_time": report.on_time},
    )
    return report


def get_report(session: DbSession, report_id: int) -> DailyReport:
    """Return a filed report; every city may view any city's report."""
    report = session.get(DailyReport, report_id)
    if report is None:
        raise NotFound(f"no daily report {report_id}")
    return report


def can_correct(actor: Actor, report: DailyReport) -> bool:
    """Tell whether the actor may correct a report: its own city's coordinators and duty officers."""
    return actor.can_write_incidents and actor.city_id == report.city_id


def correct(
    session: DbSession,
    actor: Actor,
    report_id: int,
    data: DailyReportCreate,
    *,
    confirm_open_incidents: bool = False,
) -> DailyReport:
    """Correct a filed report of the actor's city; the old text stays in the audit trail."""
    report = get_report(session, report_id)
    if not can_correct(actor, report):
        raise Forbidden("only the reporting city's coordinators and duty officers correct its report")
    _check_zero(session, report.city_id, data, confirm_open_incidents)
    before: dict[str, object] = {"zero": report.zero, "body": report.body}
    report.zero = data.zero
    report.body = data.body
    audit.record(
        session,
        actor,
        "daily_report.corrected",
        "daily_report",
        report.id,
        before=before,
        after={"zero": data.zero, "body": data.body},
        city_id=report.city_id,
    )
    return report


def remind_missing(session: DbSession, day: date) -> list[str]:
    """Remind every city without a report for the day (once each); return their slugs."""
    filed = set(session.scalars(select(DailyReport.city_id).where(DailyReport.report_date == day)))
    reminded = set(
        session.scalars(
            select(Reminder.city_id).where(
                Reminder.kind == "daily_report", Reminder.subject_id == day.toordinal()
            )
        )
    )
    missing = []
    for city in session.scalars(select(City).order_by(City.id)):
        if city.id in filed:
            continue
        missing.append(city.slug)
        if city.id not in reminded:
            session.add(
                Reminder(
                    kind="daily_report",
                    subject_id=day.toordinal(),
                    city_id=city.id,
                    stage="reminded",
                    created_at=utcnow(),
                    details={"date": day.isoformat()},
                )
            )
    return missing


def has_filed(session: DbSession, city_id: int, day: date) -> bool:
    """Return whether a city filed its report for a day."""
    query = select(DailyReport.id).where(DailyReport.city_id == city_id, DailyReport.report_date == day)
    return session.scalar(query) is not None


@dataclass(frozen=True)
class MonthGrid:
    """Who reported on which day of a month: 'on_time', 'late', 'zero', 'missing' or 'future'."""

    year: int
    month: int
    days: list[date]
    rows: list[tuple[City, list[str]]]
    report_ids: dict[tuple[int, date], int] = field(default_factory=dict)  # (city id, day): report id


def month_grid(session: DbSession, year: int, month: int) -> MonthGrid:
    """Return the month's report grid for every city."""
    days = [date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
    reports = session.scalars(
        select(DailyReport).where(DailyReport.report_date >= days[0], DailyReport.report_date <= days[-1])
    )
    by_key = {(r.city_id, r.report_date): r for r in reports}
    current = today()
    rows = []
    for city in session.scalars(select(City).order_by(City.id)):
        cells = []
        for day in days:
            report = by_key.get((city.id, day))
            if report is not None:
                cells.append("late" if not report.on_time else ("zero" if report.zero else "on_time"))
            else:
                cells.append("future" if day > current else ("due" if day == current else "missing"))
        rows.append((city, cells))
    ids = {key: report.id for key, report in by_key.items()}
    return MonthGrid(year, month, days, rows, ids)


def schedule_check(session: DbSession, now: datetime, settings: Settings) -> None:
    """Once the day's reports are due, ask (once that day) for the round that reminds the missing."""
    day = today(now)
    if now >= due_at(day, settings.daily_report_due_time):
        flow_requests.enqueue(
            session, CHECK, key=f"{CHECK}:{day.isoformat()}", parameters={"day": day.isoformat()}
        )
