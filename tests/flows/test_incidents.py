"""The notification flow through Prefect's harness: every neighbour once, re-runs harmless."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from flows.context import use_app
from flows.incidents import notify_neighbours
from flows.launcher import FlowDispatcher, LocalLauncher
from hub.extensions import db
from hub.incidents.models import Notification
from hub.kernel.models import FlowRequest, FlowRequestStatus

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


def _notified(incident_id: int) -> list[str]:
    db.session.expire_all()
    rows = db.session.scalars(select(Notification).where(Notification.incident_id == incident_id))
    return sorted(n.city.slug for n in rows)


def test_flow_notifies_each_neighbour_once_and_reruns_change_nothing(flow_app, make_incident) -> None:
    incident = make_incident("linyi", "II")
    result = notify_neighbours(incident.id)
    assert result == {"recipients": 4, "created": 4}
    assert _notified(incident.id) == ["jining", "lianyungang", "xuzhou", "zaozhuang"]
    assert notify_neighbours(incident.id) == {"recipients": 4, "created": 0}
    assert _notified(incident.id) == ["jining", "lianyungang", "xuzhou", "zaozhuang"]


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_dispatcher_runs_requested_flow_and_records_it(flow_app, make_incident) -> None:
    incident = make_incident("heze", "III")
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start()
    try:

        def done() -> bool:
            db.session.expire_all()
            return db.session.scalars(select(FlowRequest)).one().status == FlowRequestStatus.DONE

        _wait_for(done)
    finally:
        dispatcher.stop()
    request = db.session.scalars(select(FlowRequest)).one()
    assert request.flow_run_id
    assert request.attempts == 1
    assert _notified(incident.id) == ["jining", "shangqiu", "suzhou-ah", "xuzhou"]


def test_request_left_started_by_a_crash_is_rerun_without_duplicates(flow_app, make_incident) -> None:
    incident = make_incident("linyi", "I")
    request = db.session.scalars(select(FlowRequest)).one()
    # A hub killed mid-flow: the request was claimed and one city already notified.
    request.status = FlowRequestStatus.STARTED
    db.session.commit()
    from hub.incidents import notifications

    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start(recover=True)
    try:

        def done() -> bool:
            db.session.expire_all()
            return db.session.get(FlowRequest, request.id).status == FlowRequestStatus.DONE

        _wait_for(done)
    finally:
        dispatcher.stop()
    assert _notified(incident.id) == ["jining", "lianyungang", "xuzhou", "zaozhuang"]


@pytest.mark.parametrize("settings", [{"mqtt_root": "zz"}], indirect=True)
def test_joint_alerts_go_out_under_the_configured_topic_root(flow_app, make_incident) -> None:
    from hub.fleet import services as fleet
    from hub.kernel.actors import Actor
    from hub.kernel.models import City, MqttOutbox

    xuzhou = db.session.scalars(select(City).where(City.slug == "xuzhou")).one()
    fleet.register_linkage_system(db.session, Actor.system("test"), xuzhou, "fire119", "119", "徐州119")
    db.session.commit()
    incident = make_incident("linyi", "II")
    notify_neighbours(incident.id)
    db.session.expire_all()
    topics = list(db.session.scalars(select(MqttOutbox.topic)))
    assert topics == ["zz/v1/xuzhou/linkage/fire119/alerts"]
