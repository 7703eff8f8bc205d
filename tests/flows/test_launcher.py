"""The seam's deployment mode hands a request to a Prefect deployment, once per request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from prefect.client.orchestration import get_client
from sqlalchemy import select

from flows.context import use_app
from flows.launcher import DeploymentLauncher, FlowDispatcher
from flows.registry import DEPLOYMENT_NAME, flows
from hub.extensions import db
from hub.incidents.services import NOTIFY_NEIGHBOURS
from hub.kernel.models import FlowRequest, FlowRequestStatus

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


def test_deployment_mode_creates_one_run_with_the_request(flow_app, make_incident) -> None:
    # _sync: an earlier test (the browser) may have left an event loop on this thread.
    flows()[NOTIFY_NEIGHBOURS].to_deployment(name=DEPLOYMENT_NAME, _sync=True).apply(_sync=True)
    incident = make_incident("linyi", "II")
    dispatcher = FlowDispatcher(DeploymentLauncher())
    assert dispatcher.dispatch_once() == 1
    assert dispatcher.dispatch_once() == 0  # claimed requests are not handed over twice
    db.session.expire_all()
    request = db.session.scalars(select(FlowRequest)).one()
    assert request.status == FlowRequestStatus.STARTED
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(request.flow_run_id)
    assert run.parameters == {"incident_id": incident.id, "request_id": request.id}
    assert run.idempotency_key == f"hub-request-{request.id}-1"
