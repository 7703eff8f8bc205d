"""Ask for the hub's recurring flows at their times, through the same flow-request outbox.

Each request's key names its time slot, so however many hub processes tick, each slot starts
one run. Running these as requests (rather than as Prefect deployment schedules) keeps the
one-machine hub free of a subprocess per run; a multi-host setup may instead give the same
flows Prefect schedules on its deployments.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Protocol

from flows.context import hub_session
from hub.capabilities import schedules
from hub.config import Settings
from hub.kernel.types import utcnow

log = logging.getLogger(__name__)
# The shortest the loop waits: a timer that names a moment already past (a step whose run has not
# yet recorded it) does not make the loop spin.
MIN_WAIT = 0.05
# A schedule slower than this is named in the log: every other one waits for it.
SLOW_SCHEDULE = 1.0


class Wakeable(Protocol):
    def wake(self) -> None: ...


class Scheduler:
    """Run every capability's recurring jobs on each tick, then wake the flow dispatcher."""

    def __init__(self, settings: Settings, *, wake: Wakeable, tick_seconds: float = 5.0) -> None:
        self.settings = settings
        self.wake = wake
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer_thread: threading.Thread | None = None
        # When the last tick ended (time.monotonic()), for the status page.
        self.last_tick: float | None = None

    def start(self) -> None:
        """Tick in a background thread, and run the timers in another."""
        self._thread = threading.Thread(target=self._loop, name="hub-scheduler", daemon=True)
        self._thread.start()
        self._timer_thread = threading.Thread(
            target=self._timer_loop, name="hub-scheduler-timer", daemon=True
        )
        self._timer_thread.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        for thread in (self._thread, self._timer_thread):
            if thread is not None:
                thread.join(timeout=10)

    def alive(self) -> bool:
        """Tell whether the scheduler ticked lately (within three ticks)."""
        thread, last = self._thread, self.last_tick
        return bool(
            thread and thread.is_alive() and last and time.monotonic() - last < 3 * self.tick_seconds + 30
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_tick = time.monotonic()
                # The dispatcher finds nothing to do cheaply; waking it saves counting here.
                self.wake.wake()
            except Exception:
                log.exception("scheduler tick failed; trying again at the next one")
            self._stop.wait(self.tick_seconds)

    def _timer_loop(self) -> None:
        # Apart from the tick, so that a slow tick (every capability's jobs) never holds back a
        # step due at a moment of its own.
        while not self._stop.is_set():
            due: datetime | None = None
            try:
                due = self.run_timers()
                self.wake.wake()
            except Exception:
                log.exception("scheduler timers failed; trying again shortly")
            wait = self.tick_seconds if due is None else (due - utcnow()).total_seconds()
            self._stop.wait(min(max(wait, MIN_WAIT), self.tick_seconds))

    def tick(self, now: datetime | None = None) -> None:
        """Enqueue whatever is due at `now` (a slot already requested is not requested again)."""
        now = now or utcnow()
        with hub_session() as session:
            for schedule in schedules():
                began = time.monotonic()
                schedule.enqueue(session, now, self.settings)
                spent = time.monotonic() - began
                if spent > SLOW_SCHEDULE:
                    log.warning("schedule %r took %.1f s of the tick", schedule.name, spent)

    def run_timers(self, now: datetime | None = None) -> datetime | None:
        """Enqueue the timed steps due at `now`; return when the next one is due (None: none is)."""
        now = now or utcnow()
        found: list[datetime] = []
        with hub_session() as session:
            for schedule in schedules():
                if schedule.timer is not None:
                    due = schedule.timer(session, now, self.settings)
                    if due is not None:
                        found.append(due)
        return min(found, default=None)
