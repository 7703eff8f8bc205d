"""The regional topology on one machine (`hub topology up`): every part a process of its own.

One topology for the module (about a minute to bring up): PostgreSQL of its own, a Prefect
server on it with two `hub flows serve` workers, two hub web processes behind haproxy, a
regional broker with two ingest workers, and two city-edge brokers bridged to it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from connectors.sims.vehicles import SimulatedVehicle, SimVehicleSpec
from hub.fleet.models import Vehicle, VehiclePosition
from hub.kernel import flow_requests
from hub.kernel.models import FlowRequest, FlowRequestStatus
from hub.kernel.seed import DEMO_PASSWORD
from hub.runtime.topology import Topology, TopologyOptions

pytestmark = pytest.mark.slow  # brings up a dozen processes, kills one

EDGE_CITY = "xuzhou"
TIMEOUT = 120.0  # generous: the machine is shared


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    # Not under pytest's temporary folder: only root may enter it, and PostgreSQL runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="hub-topology-"))
    options = TopologyOptions(folder, vehicles=1, simulate=False, ingest_workers=2)
    try:
        with Topology(options) as running:
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(topology: Topology) -> Iterator[Engine]:
    made = create_engine(topology.database_url)
    yield made
    made.dispose()


def wait_for(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.2)


def login(base: str, username: str) -> requests.Session:
    """Log in through the real form (as bench/desk.py does)."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token, "no CSRF token on the log-in page"
    answer = session.post(
        f"{base}/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        timeout=30,
    )
    assert answer.ok and "/login" not in answer.url, f"{username} could not log in"
    return session


def open_desk_stream(session: requests.Session, base: str) -> tuple[requests.Response, str]:
    """Open the desk's push stream; return it once its first event (the desk) came, and who serves it."""
    stream = session.get(f"{base}/dashboard/events", stream=True, timeout=(5, 30))
    assert stream.status_code == 200, stream.status_code
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    for line in stream.iter_lines(decode_unicode=True):
        if line == "event: desk":
            return stream, stream.headers["X-Hub-Server"]
    raise AssertionError("the stream ended before it sent the desk")


def test_a_report_on_an_edge_broker_is_stored_once(topology: Topology, engine: Engine) -> None:
    """Edge broker -> bridge -> regional broker -> an ingest worker's shared subscription -> database."""
    (account,) = topology.vehicle_credentials(EDGE_CITY)
    spec = SimVehicleSpec(
        EDGE_CITY, account["code"], account["username"], account["password"], (117.18, 34.26)
    )
    vehicle = SimulatedVehicle(spec, topology.edges[EDGE_CITY].url, root=topology.options.root, rate_hz=5.0)
    vehicle.start()
    try:
        vehicle.wait_connected(30)
        wait_for(lambda: vehicle.next_seq >= 10, "ten reports sent")
    finally:
        vehicle.stop()
    sent = vehicle.next_seq

    def stored() -> list[int]:
        with Session(engine) as session:
            query = (
                select(VehiclePosition.seq)
                .join(Vehicle, Vehicle.id == VehiclePosition.vehicle_id)
                .where(Vehicle.mqtt_username == account["username"])
                .order_by(VehiclePosition.seq)
            )
            return list(session.scalars(query))

    wait_for(lambda: len(stored()) >= sent, f"the {sent} reports stored")
    time.sleep(1)  # a report stored twice would show up by now
    assert stored() == list(range(sent))


def test_a_web_process_killed_behind_haproxy(topology: Topology, engine: Engine) -> None:
    """SIGKILL one web process: the session goes on, the desk stream reconnects, flows still run."""
    coordinator = login(topology.url, f"{EDGE_CITY}-coord")
    stream, serving = open_desk_stream(coordinator, topology.url)
    victim = next(p for p in topology.web if p.name == serving)
    survivor = next(p for p in topology.web if p.name != serving)

    victim.kill()
    # The stream the browser had open breaks; an EventSource opens a new one.
    with pytest.raises(requests.RequestException):
        for _ in stream.iter_lines():
            pass
        raise requests.ConnectionError("the stream ended")
    stream.close()

    # Every next request goes through, under the same session cookie, before and after haproxy
    # has marked the dead process down: no sticky sessions, no log-in again.
    for _ in range(6):
        page = coordinator.get(f"{topology.url}/", timeout=30)
        assert page.status_code == 200 and "/login" not in page.url
        assert page.headers["X-Hub-Server"] == survivor.name
    again, served_by = open_desk_stream(coordinator, topology.url)
    again.close()
    assert served_by == survivor.name

    # A flow requested after the kill runs to its end on a flow worker (deployment mode): the
    # surviving process's dispatcher hands it to a deployment that `hub flows serve` runs.
    with Session(engine) as session:
        request = flow_requests.enqueue(session, "prune-retention", "after-the-kill", {})
        session.commit()
        request_id = request.id

    def finished() -> FlowRequest | None:
        with Session(engine, expire_on_commit=False) as session:
            row = session.get(FlowRequest, request_id)
            return row if row is not None and row.status == FlowRequestStatus.DONE else None

    wait_for(finished, "the flow requested after the kill done")
    done = finished()
    assert done is not None and done.flow_run_id
    assert f":{victim.pid}:" not in (done.claimed_by or "")
    assert topology.prefect is not None
    run = requests.get(f"{topology.prefect.api_url}/flow_runs/{done.flow_run_id}", timeout=10).json()
    assert run["deployment_id"], "the flow ran in the hub, not on a worker"
    assert run["state_type"] == "COMPLETED"
