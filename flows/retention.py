"""Prune the kernel's tables once a day, as long as the settings say (hub/kernel/retention.py)."""

from __future__ import annotations

import logging
from datetime import datetime

from prefect import flow, task

from flows.bookkeeping import REQUEST_HOOKS
from flows.context import hub_session, hub_settings
from hub.kernel import retention
from hub.kernel.retention import RetentionPolicy
from hub.kernel.types import utcnow

log = logging.getLogger(__name__)


@task
def prune_round(now: datetime, policy: RetentionPolicy) -> dict[str, int]:
    """Delete one bounded round of old rows, in a transaction of its own."""
    with hub_session() as session:
        return retention.prune(session, now, policy)


@flow(name=retention.PRUNE, **REQUEST_HOOKS)
def prune_retention(day: str | None = None, request_id: int | None = None) -> dict[str, int]:
    """Prune every kernel table round by round until nothing old is left; return the counts."""
    policy = RetentionPolicy.from_settings(hub_settings())
    now = utcnow()
    totals: dict[str, int] = {}
    while True:
        removed = prune_round(now, policy)
        for table, count in removed.items():
            totals[table] = totals.get(table, 0) + count
        if not retention.more_left(removed, policy):
            break
    log.info("retention removed %s", totals)
    return totals
