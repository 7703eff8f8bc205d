"""Check the day's reports once they are due, and remind the cities that have not filed."""

from __future__ import annotations

import logging
from datetime import datetime

from prefect import flow

from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session
from hub.daily_reports import services as daily_reports

log = logging.getLogger(__name__)
RETRY_DELAYS: list[float] = [1, 5, 15]


@flow(name="check-daily-reports", **REQUEST_HOOKS)
def check_daily_reports(day: str, request_id: int | None = None) -> list[str]:
    """Remind every city that has not filed its report for the day; return them."""
    with hub_session() as session:
        return daily_reports.remind_missing(session, datetime.fromisoformat(day).date())
