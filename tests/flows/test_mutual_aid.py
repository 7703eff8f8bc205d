"""Mutual aid's flows through Prefect's harness: each step does its work once, re-runs change nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from contracts.mutual_aid import AidState, GeoPoint
from flows import mutual_aid as aid_flows
from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest, FlowRequestStatus, Reminder, User
from hub.mutual_aid import services
from hub.mutual_aid.models import AidCommitment, AidResource
from tests.flows.test_incidents import _wait_for
from tests.hub.mutual_aid.factories import CONTACT, entry, line

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


@pytest.fixture
def actors(flow_app: Flask, make_user: Callable[..., User]) -> dict[str, Actor]:
    return {slug: Actor.for_user(make_user(f"u-{slug}", slug)) for slug in ("linyi", "zaozhuang", "xuzhou")}


def _setup(actors: dict[str, Actor]) -> tuple[int, int]:
    services.register_entry(
        db.session, actors["xuzhou"], entry(owner="xuzhou", location=GeoPoint(lat=34.262, lon=117.185))
    )
    pumps = services.register_entry(
        db.session, actors["zaozhuang"], entry(owner="zaozhuang", location=GeoPoint(lat=34.856, lon=117.558))
    )
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=20)], contact=CONTACT
    )
    db.session.commit()
    return request.id, pumps.id


def test_asking_a_ring_asks_each_city_once(actors) -> None:
    request_id, _ = _setup(actors)
    assert aid_flows.ask_ring(request_id, 0) == ["zaozhuang"]
    assert aid_flows.ask_ring(request_id, 0) == []
    assert aid_flows.ask_ring(request_id, 1) == ["xuzhou"]
    db.session.expire_all()
    assert sorted(a.city.slug for a in services.asks(db.session, request_id)) == ["xuzhou", "zaozhuang"]


def test_the_dispatcher_runs_the_first_ring_the_request_asked_for(actors) -> None:
    request_id, _ = _setup(actors)
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start()
    try:

        def done() -> bool:
            db.session.expire_all()
            return db.session.scalars(sa.select(FlowRequest)).one().status == FlowRequestStatus.DONE

        _wait_for(done)
    finally:
        dispatcher.stop()
    db.session.expire_all()
    assert [a.city.slug for a in services.asks(db.session, request_id)] == ["zaozhuang"]


def test_reminding_expiring_and_alerting_happen_once(actors) -> None:
    request_id, pumps_id = _setup(actors)
    aid_flows.ask_ring(request_id, 0)
    ask_id = services.asks(db.session, request_id)[0].id
    assert aid_flows.remind_ask(ask_id) is True
    assert aid_flows.remind_ask(ask_id) is False

    request = services.get_request(db.session, request_id)
    hold = services.make_offer(db.session, actors["zaozhuang"], request.lines[0].id, pumps_id, Decimal(3))
    services.accept(db.session, actors["linyi"], hold.id)
    hold.accepted_at = hold.accepted_at - services.HOLD_WINDOW - timedelta(minutes=1)
    moving = services.make_offer(db.session, actors["zaozhuang"], request.lines[0].id, pumps_id, Decimal(2))
    services.accept(db.session, actors["linyi"], moving.id)
    services.authorise(db.session, actors["zaozhuang"], moving.id, "ZZ-1")
    services.dispatch(db.session, actors["zaozhuang"], moving.id)
    db.session.commit()
    hold_id, moving_id = hold.id, moving.id

    assert aid_flows.expire_commitment(hold_id) is True
    assert aid_flows.expire_commitment(hold_id) is False
    assert aid_flows.alert_overdue_arrival(moving_id) is True
    assert aid_flows.alert_overdue_arrival(moving_id) is False
    db.session.expire_all()
    assert db.session.get(AidCommitment, hold_id).state == AidState.EXPIRED.value
    pumps = db.session.get(AidResource, pumps_id)
    assert (pumps.reserved, pumps.deployed) == (Decimal(0), Decimal(2))
    kinds = sorted(r.kind for r in db.session.scalars(sa.select(Reminder)))
    assert kinds == ["aid_arrival", "aid_ask"]
