"""Ask for the hub's recurring flows at their times, through the same flow-request outbox.

Each request's key names its time slot, so however many hub processes tick, each slot starts
one run. Running these as requests (rather than as Prefect deployment schedules) keeps the
one-machine hub free of a subprocess per run; a multi-host setup may instead give the same
flows Prefect schedules on its deployments.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, time

from flows.context import hub_session
from hub.models import utcnow
from hub.services import bulletins, daily_reports, flow_requests, partners

log = logging.getLogger(__name__)


class Scheduler:
    """Enqueue partner syncs, deadline checks, the daily-report check and delivery retries."""

    def __init__(
        self,
        *,
        wake: object,
        default_sync_seconds: int = 60,
        chase_seconds: int = 60,
        redeliver_seconds: int = 30,
        daily_report_due: time = time(17, 0),
        tick_seconds: float = 5.0,
    ) -> None:
        self.wake = wake
        self.default_sync_seconds = default_sync_seconds
        self.chase_seconds = chase_seconds
        self.redeliver_seconds = redeliver_seconds
        self.daily_report_due = daily_report_due
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Tick in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="hub-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                # The dispatcher finds nothing to do cheaply; waking it saves counting here.
                self.wake.wake()  # type: ignore[attr-defined]
            except Exception:
                log.exception("scheduler tick failed; trying again at the next one")
            self._stop.wait(self.tick_seconds)

    def tick(self, now: datetime | None = None) -> None:
        """Enqueue whatever is due at `now` (a slot already requested is not requested again)."""
        now = now or utcnow()
        epoch = int(now.timestamp())
        with hub_session() as session:
            for platform in partners.platforms(session):
                interval = max(10, platform.sync_interval_seconds or self.default_sync_seconds)
                partners.request_sync(session, platform.city.slug, f"t{epoch // interval}")
            flow_requests.enqueue(
                session,
                flow_requests.CHASE_DEADLINES,
                key=f"{flow_requests.CHASE_DEADLINES}:{epoch // self.chase_seconds}",
                parameters={},
            )
            for bulletin_id, public_id in bulletins.with_undelivered(session):
                flow_requests.enqueue(
                    session,
                    bulletins.DISTRIBUTE,
                    key=f"{bulletins.DISTRIBUTE}:{public_id}:retry-{epoch // self.redeliver_seconds}",
                    parameters={"bulletin_id": bulletin_id},
                )
            for bulletin_id, public_id in bulletins.bulletins_with_receipts_to_forward(session):
                flow_requests.enqueue(
                    session,
                    bulletins.FORWARD,
                    key=f"{bulletins.FORWARD}:{public_id}:{epoch // self.redeliver_seconds}",
                    parameters={"bulletin_id": bulletin_id},
                )
            today = daily_reports.today(now)
            if now >= daily_reports.due_at(today, self.daily_report_due):
                flow_requests.enqueue(
                    session,
                    flow_requests.CHECK_DAILY_REPORTS,
                    key=f"{flow_requests.CHECK_DAILY_REPORTS}:{today.isoformat()}",
                    parameters={"day": today.isoformat()},
                )
