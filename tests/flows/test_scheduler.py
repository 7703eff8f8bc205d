"""The scheduler under a jumping wall clock: a step forward asks for the current slot once (no
burst of the slots it skipped); a step back asks for nothing twice and resumes when the clock
passes the last slot already asked for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from flows.context import use_app
from flows.scheduler import Scheduler
from hub.app import settings_of
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest, Role
from hub.partners import services as partners

ADMIN = Actor("system", "tests", None, Role.ADMIN)
START = datetime(2026, 11, 30, 2, 0, 5, tzinfo=UTC)


class NoDispatcher:
    def wake(self) -> None:
        """Nothing runs the requests here: the test counts them."""


@pytest.fixture
def scheduler(app: Flask, city) -> Iterator[Scheduler]:
    settings = settings_of(app)
    for slug in ("linyi", "xuzhou"):
        partners.register(
            db.session, ADMIN, city(slug), f"http://127.0.0.1:9/{slug}", "token", settings=settings
        )
    db.session.commit()
    use_app(app)
    yield Scheduler(settings.with_overrides(partner_sync_seconds=60), wake=NoDispatcher())
    use_app(None)


def _sync_slots() -> list[str]:
    db.session.expire_all()
    query = select(FlowRequest.key).where(FlowRequest.flow_name == partners.SYNC_DUE).order_by(FlowRequest.id)
    return list(db.session.scalars(query))


def _requests() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(FlowRequest)) or 0


def test_a_step_forward_asks_for_the_current_slot_only(scheduler: Scheduler) -> None:
    scheduler.tick(START)
    before = _requests()
    assert len(_sync_slots()) == 1  # both cities in one run

    # Six hours pass in one step (a suspended host, an NTP correction): not 360 syncs at once.
    scheduler.tick(START + timedelta(hours=6))
    assert len(_sync_slots()) == 2
    # Each recurring job asked for at most its current slot.
    assert _requests() - before <= 2


def test_a_step_back_repeats_nothing_and_resumes_after_the_step(scheduler: Scheduler) -> None:
    for minute in range(11):
        scheduler.tick(START + timedelta(minutes=minute))
    assert len(_sync_slots()) == 11

    # The clock goes back five minutes: those slots ran already, and are not asked for again.
    for minute in range(5, 11):
        scheduler.tick(START + timedelta(minutes=minute, seconds=30))
    assert len(_sync_slots()) == 11

    # Once the clock passes the last slot asked for, the syncs go on.
    scheduler.tick(START + timedelta(minutes=11))
    assert len(_sync_slots()) == 12
    assert len(set(_sync_slots())) == 12
