"""The daily retention flow through Prefect's harness: it prunes and records its request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from flows.retention import prune_retention
from hub.extensions import db
from hub.kernel import flow_requests, retention
from hub.kernel.models import DeadLetter, FlowRequest, FlowRequestStatus, MqttOutbox
from hub.kernel.types import utcnow

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


def _old_rows(count: int) -> None:
    long_ago = utcnow() - timedelta(days=60)
    for _ in range(count):
        db.session.add(MqttOutbox(topic="hh/t", payload=b"{}", created_at=long_ago, published_at=long_ago))
        db.session.add(
            DeadLetter(source="mqtt", topic="hh/x", reason="bad", received_at=long_ago, size=2, payload=b"{}")
        )
    db.session.add(MqttOutbox(topic="hh/t", payload=b"{}", created_at=long_ago))  # never published
    db.session.commit()


def test_flow_prunes_every_table_and_reports_the_counts(flow_app) -> None:
    _old_rows(3)
    assert prune_retention() == {
        "flow_requests": 0,
        "mqtt_outbox": 3,
        "reminders": 0,
        "dead_letters": 3,
        "hub_nodes": 0,
    }
    db.session.expire_all()
    assert [row.published_at for row in db.session.scalars(select(MqttOutbox))] == [None]
    assert db.session.scalars(select(DeadLetter)).all() == []


def test_scheduled_request_runs_through_the_dispatcher(flow_app, settings) -> None:
    _old_rows(1)
    retention.schedule_prune(db.session, utcnow(), settings)
    db.session.commit()
    dispatcher = FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.2)
    dispatcher.start()
    try:
        deadline = utcnow() + timedelta(seconds=30)
        while utcnow() < deadline:
            db.session.expire_all()
            request = db.session.scalars(select(FlowRequest)).one()
            if request.status == FlowRequestStatus.DONE:
                break
            time.sleep(0.1)
    finally:
        dispatcher.stop()
    assert request.status == FlowRequestStatus.DONE and request.key.startswith(f"{retention.PRUNE}:")
    assert db.session.scalars(select(DeadLetter)).all() == []
    assert flow_requests.pending_ids(db.session) == []
