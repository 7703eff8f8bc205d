"""What the daily-reports capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub.capabilities import DeskItem
from hub.daily_reports import services
from hub.daily_reports.models import DailyReport
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Today's report, while the city has not filed it."""
    day = services.today()
    if services.has_filed(session, city_id, day):
        return []
    due = services.due_at(day, settings.daily_report_due_time)
    return [DeskItem("daily_reports/_urgent.html", due, due, key=f"daily_reports:{day.isoformat()}")]


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: its reports; for every desk: the local day (a new day asks for a new report)."""
    query = select(DailyReport.city_id, func.count(), func.max(DailyReport.id)).group_by(DailyReport.city_id)
    found: dict[int | None, object] = {city_id: (n, last) for city_id, n, last in session.execute(query)}
    found[None] = services.today()
    return found
