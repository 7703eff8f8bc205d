"""A hub killed in the middle of a mutual-aid step and started again completes the step once.

A real hub process (`tests.flows.aid_step_process`) dispatches the step's flow request and is
SIGKILLed either inside the step (its rows written, not committed) or after the step committed
but before the request was marked done; a hub started again on the same database requeues the
request, runs it, and the cities are asked once and the request ends once.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from hub.config import Settings
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, FlowRequest, FlowRequestStatus, User
from hub.kernel.types import utcnow
from hub.mutual_aid import services, upkeep
from hub.mutual_aid.models import AidAsk, AidRequest
from tests.flows.processes import spawn
from tests.flows.test_mqtt_bridge import wait_for
from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, entry, line

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]
START_S = 120  # at most this long for the process to import and reach the step (a busy machine)


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


def _killed_at(settings: Settings, point: str, request_id: int, tmp_path: Path) -> None:
    """Run a hub process until it stops at `point` of the request, then SIGKILL it."""
    marker, log = tmp_path / f"stopped-{point}", tmp_path / f"hub-{point}.log"
    hub = spawn(
        ["tests.flows.aid_step_process", point, str(request_id), str(marker)], settings, "killed", log
    )
    try:
        deadline = time.monotonic() + START_S
        while not marker.exists():
            assert hub.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
    finally:
        os.kill(hub.pid, signal.SIGKILL)
        hub.wait(timeout=30)
    assert hub.returncode == -signal.SIGKILL


def _restart_until_done(request_id: int) -> FlowRequest:
    """Start the hub's dispatcher again, recovering what the killed one left, until the request is done."""
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start(recover=True)
    try:

        def done() -> bool:
            db.session.expire_all()
            found = db.session.get(FlowRequest, request_id)
            return found is not None and found.status == FlowRequestStatus.DONE

        wait_for(done, 90, "the step finished after the restart")
    finally:
        dispatcher.stop()
    found = db.session.get(FlowRequest, request_id)
    assert found is not None
    return found


def _actions(request_id: int) -> Counter[str]:
    return Counter(
        db.session.scalars(
            sa.select(AuditEntry.action).where(
                AuditEntry.entity_type == "aid_request", AuditEntry.entity_id == request_id
            )
        )
    )


@pytest.mark.parametrize("point", ["step", "finish"])
def test_a_hub_killed_while_asking_a_ring_asks_each_city_once(
    flow_app: Flask, settings: Settings, make_user: Callable[..., User], tmp_path: Path, point: str
) -> None:
    linyi = Actor.for_user(make_user("u-linyi", "linyi"))
    for slug in ("xuzhou", "zaozhuang"):
        owner = Actor.for_user(make_user(f"u-{slug}", slug))
        services.register_entry(db.session, owner, entry(owner=slug, quantity=Decimal(5)))
    request = services.create_request(
        db.session, linyi, title="沂河洪水", lines=[line(quantity=10)], contact=CONTACT
    )
    db.session.commit()
    (ring,) = db.session.scalars(sa.select(FlowRequest).where(FlowRequest.flow_name == services.SOURCE))

    _killed_at(settings, point, ring.id, tmp_path)
    db.session.expire_all()
    asked_before = db.session.scalar(sa.select(sa.func.count()).where(AidAsk.request_id == request.id))
    assert asked_before == (0 if point == "step" else 2)  # rolled back with the process, or committed

    finished = _restart_until_done(ring.id)
    assert finished.attempts == 2
    asked = Counter(a.city.slug for a in services.asks(db.session, request.id))
    assert asked == {"xuzhou": 1, "zaozhuang": 1}
    assert _actions(request.id)["aid_request.asked"] == 1


@pytest.mark.parametrize("point", ["step", "finish"])
def test_a_hub_killed_while_ending_a_request_ends_it_once(
    flow_app: Flask, settings: Settings, make_user: Callable[..., User], tmp_path: Path, point: str
) -> None:
    linyi = Actor.for_user(make_user("u-linyi", "linyi"))
    request = services.create_request(
        db.session, linyi, title="无资源", lines=[line(quantity=10)], contact=CONTACT
    )
    assert services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR) == []  # nobody has any
    db.session.execute(sa.update(FlowRequest).values(status=FlowRequestStatus.DONE))
    request.created_at = utcnow() - services.ASK_WINDOW - timedelta(seconds=1)
    db.session.commit()
    upkeep.schedule_closing(db.session, utcnow(), settings)
    db.session.commit()
    (ending,) = db.session.scalars(sa.select(FlowRequest).where(FlowRequest.flow_name == upkeep.CLOSE))

    _killed_at(settings, point, ending.id, tmp_path)
    db.session.expire_all()
    assert db.session.get(AidRequest, request.id).status == ("open" if point == "step" else upkeep.UNFILLED)

    finished = _restart_until_done(ending.id)
    assert finished.attempts == 2
    assert db.session.get(AidRequest, request.id).status == upkeep.UNFILLED
    assert _actions(request.id)["aid_request.unfilled"] == 1
