"""A drill played by the scheduler and the flow dispatcher: each step once, the table as timer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from contracts.drills import DrillPlan
from flows.context import use_app
from flows.drills import drill_inject, drill_startex
from flows.launcher import FlowDispatcher, LocalLauncher
from flows.scheduler import Scheduler
from hub.app import settings_of
from hub.drills import services
from hub.drills.models import Drill, DrillInject, DrillStatus
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest, FlowRequestStatus, User
from hub.kernel.types import utcnow
from tests.hub.drills.conftest import MSEL_CSV, plan_data

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


def _drill(make_user: Callable[..., User], *, scale: float, start_in: timedelta, hours: float = 2) -> Drill:
    actor = Actor.for_user(make_user("controller", "xuzhou"))
    start = utcnow().replace(microsecond=0) + start_in
    plan = DrillPlan.model_validate(plan_data(startex=start, endex=start + timedelta(hours=hours)))
    drill = services.create(db.session, actor, plan, time_scale=scale)
    services.import_msel(db.session, actor, drill.id, MSEL_CSV.encode())
    services.approve(db.session, actor, drill.id)
    db.session.commit()
    return drill


def wait_for_report(drill_id: int, seconds: float) -> None:
    """Wait until the drill's report is drafted, or `seconds` have passed (the caller checks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.expire_all()
        if db.session.get(Drill, drill_id).aar is not None:
            return
        time.sleep(0.2)


def test_repeated_step_flows_do_each_step_once(flow_app: Flask, make_user: Callable[..., User]) -> None:
    drill = _drill(make_user, scale=1, start_in=timedelta(seconds=-1))
    assert drill_startex(drill.id) is True
    assert drill_startex(drill.id) is False
    assert drill_inject(drill.id, 1) == "delivered"
    assert drill_inject(drill.id, 1) == "already"
    assert drill_inject(drill.id, 2) == "not_due"


def test_a_scaled_drill_plays_to_its_aar_through_the_scheduler(
    flow_app: Flask, make_user: Callable[..., User]
) -> None:
    # Two hours at 3600x: twelve injects' worth of play in two seconds, no run sleeping between.
    drill = _drill(make_user, scale=3600, start_in=timedelta(seconds=-1))
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.1)
    scheduler = Scheduler(settings_of(flow_app), wake=dispatcher, tick_seconds=0.2)
    dispatcher.start()
    scheduler.start()
    try:
        wait_for_report(drill.id, 60)
    finally:
        scheduler.stop()
        dispatcher.stop()
    db.session.expire_all()
    played = db.session.get(Drill, drill.id)
    assert played.status == DrillStatus.ENDED and played.aar is not None
    states = dict(
        db.session.execute(
            select(DrillInject.number, DrillInject.state).where(DrillInject.drill_id == drill.id)
        ).all()
    )
    assert states[1] == states[2] == states[3] == "delivered"
    keys = db.session.scalars(
        select(FlowRequest.key).where(FlowRequest.key.like(f"drill:{drill.id}:%"))
    ).all()
    assert len(keys) == len(set(keys))
    assert f"drill:{drill.id}:inject:1" in keys and f"drill:{drill.id}:aar" in keys
    failed = db.session.scalar(
        select(func.count()).select_from(FlowRequest).where(FlowRequest.status == FlowRequestStatus.FAILED)
    )
    assert failed == 0


class NoDispatcher:
    def wake(self) -> None:
        """Nothing runs the requests here: the test looks for them."""


def test_the_scheduler_wakes_at_startex_rather_than_at_its_next_tick(
    flow_app: Flask, make_user: Callable[..., User]
) -> None:
    drill = _drill(make_user, scale=1, start_in=timedelta(seconds=2))
    # A tick every ten minutes: only the drills' timer can ask for STARTEX within the wait below.
    scheduler = Scheduler(settings_of(flow_app), wake=NoDispatcher(), tick_seconds=600)
    key = f"drill:{drill.id}:startex"
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.scalar(select(FlowRequest).where(FlowRequest.key == key)) is not None:
                break
            time.sleep(0.1)
    finally:
        scheduler.stop()
    assert db.session.scalar(select(FlowRequest).where(FlowRequest.key == key)) is not None


def test_one_run_delivers_the_injects_due_together(flow_app: Flask, make_user: Callable[..., User]) -> None:
    drill = _drill(make_user, scale=3600, start_in=timedelta(seconds=-1))
    services.start(db.session, drill.id, utcnow() - timedelta(seconds=10))
    db.session.commit()
    assert drill_inject(drill.id, 1, also=[2, 3]) == "delivered"
    db.session.expire_all()
    states = dict(
        db.session.execute(
            select(DrillInject.number, DrillInject.state).where(DrillInject.drill_id == drill.id)
        ).all()
    )
    assert states[1] == states[2] == states[3] == "delivered" and states[4] == "held"
    assert drill_inject(drill.id, 2, also=[3]) == "already"
