"""What the daily-reports capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.capabilities import DeskItem
from hub.daily_reports import services
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Today's report, while the city has not filed it."""
    day = services.today()
    if services.has_filed(session, city_id, day):
        return []
    due = services.due_at(day, settings.daily_report_due_time)
    return [DeskItem("daily_reports/_urgent.html", due, due)]
