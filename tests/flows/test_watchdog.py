"""The flow requests' watchdog: a request whose process died or whose run went quiet goes back to
the queue and runs to its end once; a second run for a request changes nothing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from contracts.verifications import VerificationCreate
from hub.config import Settings
from hub.extensions import db
from hub.kernel import flow_requests, nodes
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest, FlowRequestStatus, HubNode, User
from hub.verifications import services as verifications
from hub.verifications.models import VerificationRequest
from tests.flows.processes import spawn

START_S = 120  # at most this long for a hub process to import and tick (a busy 2-core machine)


def _node(name: str, *, pid: int | None = None, host: str | None = None, quiet_for: float = 0.0) -> str:
    seen = datetime.now(UTC) - timedelta(seconds=quiet_for)
    db.session.add(
        HubNode(
            name=name,
            roles=["dispatcher"],
            host=host or socket.gethostname(),
            pid=os.getpid() if pid is None else pid,
            started_at=seen,
            last_seen_at=seen,
        )
    )
    return name


def _request(key: str) -> int:
    request = flow_requests.enqueue(db.session, "deliver-verification", key, {"verification_id": 0})
    return request.id


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _status(request_id: int) -> str:
    db.session.expire_all()
    return db.session.get(FlowRequest, request_id).status


def test_requests_of_dead_nodes_go_back_to_the_queue_and_a_live_ones_stay(app: Flask) -> None:
    live = _node("live")
    crashed_here = _node("crashed-here", pid=_dead_pid())  # beat a moment ago, but its process is gone
    silent_elsewhere = _node("silent-elsewhere", host="another-host", quiet_for=120)
    requests = {name: _request(f"r-{name}") for name in (live, crashed_here, silent_elsewhere)}
    legacy = _request("left-by-an-older-hub")
    db.session.commit()
    for name, request_id in requests.items():
        assert flow_requests.claim(db.session, request_id, name) is not None
    flow_requests.claim(db.session, legacy)
    db.session.commit()

    alive = nodes.live_names(db.session)
    assert alive == {live}
    requeued = flow_requests.requeue_orphaned(db.session, datetime.now(UTC), alive)
    db.session.commit()
    assert sorted(requeued) == sorted([requests[crashed_here], requests[silent_elsewhere], legacy])
    assert _status(requests[live]) == FlowRequestStatus.STARTED
    assert _status(requests[crashed_here]) == FlowRequestStatus.PENDING
    again = flow_requests.claim(db.session, requests[crashed_here], live)
    assert again is not None and again.attempts == 2 and again.claimed_by == live


def test_a_run_that_stops_beating_loses_its_request_and_its_late_end_changes_nothing(app: Flask) -> None:
    live = _node("dispatcher")
    request_id = _request("quiet-run")
    db.session.commit()
    flow_requests.claim(db.session, request_id, live)
    # A Prefect worker's run takes it: no hub node vouches for it, only its heartbeat.
    assert flow_requests.take(db.session, request_id, "run-1", None)
    db.session.commit()
    now = datetime.now(UTC)
    assert flow_requests.requeue_orphaned(db.session, now, {live}) == {}
    flow_requests.beat(db.session, ["run-1"])
    assert flow_requests.requeue_orphaned(db.session, now + flow_requests.RUN_QUIET_AFTER / 2, {live}) == {}
    assert flow_requests.requeue_orphaned(db.session, now + flow_requests.RUN_QUIET_AFTER * 2, {live}) == {
        request_id: "run-1"
    }
    db.session.commit()
    # The worker was only cut off, not dead: its end comes after the request went back.
    assert not flow_requests.finish(db.session, request_id, flow_run_id="run-1")
    db.session.commit()
    assert _status(request_id) == FlowRequestStatus.PENDING


def test_a_second_run_for_a_request_is_a_duplicate_and_only_the_first_ends_it(app: Flask) -> None:
    request_id = _request("twice")
    db.session.commit()
    # A run may start for a request no dispatcher claimed (a second trigger): it claims it.
    assert flow_requests.take(db.session, request_id, "run-1", None)
    assert not flow_requests.take(db.session, request_id, "run-2", None)
    assert not flow_requests.finish(db.session, request_id, error="Crashed", flow_run_id="run-2")
    assert flow_requests.finish(db.session, request_id, flow_run_id="run-1")
    db.session.commit()
    request = db.session.get(FlowRequest, request_id)
    assert (request.status, request.attempts, request.last_error) == (FlowRequestStatus.DONE, 1, None)
    assert not flow_requests.take(db.session, request_id, "run-3", None)  # over: nothing to take


def _hub(settings: Settings, name: str, log: Path) -> subprocess.Popen[bytes]:
    return spawn(["tests.flows.hub_process", "600"], settings, name, log)


def _ask_xuzhou_to_verify(make_user: Callable[..., User]) -> VerificationRequest:
    """Linyi asks Xuzhou's platform to verify a report: one flow request, one platform call."""
    verification = verifications.create(
        db.session,
        Actor.for_user(make_user("ly", "linyi")),
        VerificationCreate(
            to_city="xuzhou",
            subject="核实邳州段险情",
            question="请核实邳州段堤防是否管涌。",
            deadline=datetime.now(UTC) + timedelta(hours=1),
        ),
    )
    db.session.commit()
    return verification


def _wait(condition: Callable[[], bool], what: str, seconds: float = START_S) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_hub_process_killed_mid_flow_leaves_its_request_to_the_next_which_finishes_it_once(
    platforms, make_user: Callable[..., User], settings: Settings, tmp_path: Path
) -> None:
    xuzhou = platforms("xuzhou")
    xuzhou.slow(30)  # the delivery hangs: the process is killed in the middle of it
    first_log, second_log = tmp_path / "hub-a.log", tmp_path / "hub-b.log"
    first = _hub(settings, "hub-a", first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        _wait(lambda: "ticking" in first_log.read_text(errors="replace"), "the first hub process")
        verification = _ask_xuzhou_to_verify(make_user)
        request = db.session.scalars(
            select(FlowRequest).where(FlowRequest.flow_name == verifications.DELIVER)
        ).one()

        def taken() -> bool:
            db.session.expire_all()
            row = db.session.get(FlowRequest, request.id)
            return row.flow_run_id is not None and row.heartbeat_at is not None

        _wait(taken, "the first process's run to take the request")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        xuzhou.slow(0)
        db.session.expire_all()
        assert db.session.get(FlowRequest, request.id).status == FlowRequestStatus.STARTED

        second = _hub(settings, "hub-b", second_log)
        _wait(
            lambda: _status(request.id) == FlowRequestStatus.DONE, "the second process to finish the request"
        )
        db.session.expire_all()
        done = db.session.get(FlowRequest, request.id)
        assert done.attempts == 2 and done.last_error is None
        assert db.session.get(VerificationRequest, verification.id).delivered_at is not None
        # Outbound is at least once: the killed process's call may have reached the platform too,
        # but the platform holds the request once.
        assert {r.id for r in xuzhou.verification_requests()} == {verification.public_id}
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def _flow_server(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`hub flows serve` in a process group of its own, as a Prefect worker host would run it."""
    return spawn(
        ["web", "flows", "serve"],
        settings,
        "flow-server",
        log,
        env={"PREFECT_RUNNER_POLL_FREQUENCY": "1"},
        own_group=True,
    )


def _deployment_served() -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.registry import DEPLOYMENT_NAME

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(f"{verifications.DELIVER}/{DEPLOYMENT_NAME}")
        except ObjectNotFound:
            return False
    return True


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_prefect_worker_killed_mid_flow_is_noticed_by_its_silence_and_the_request_runs_again(
    platforms, make_user: Callable[..., User], settings: Settings, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    from flows.launcher import DeploymentLauncher, FlowDispatcher
    from flows.presence import NodePresence

    xuzhou = platforms("xuzhou")
    xuzhou.slow(120)  # the delivery hangs: the worker is killed in the middle of it
    log = tmp_path / "flow-server.log"
    presence = NodePresence("test-dispatcher", ["dispatcher"]).start()
    # The run's silence is noticed after 30 s here (60 s in the hub), well past its 10 s beat.
    dispatcher = FlowDispatcher(
        DeploymentLauncher(), node=presence.name, watch_every=1.0, run_quiet_after=timedelta(seconds=30)
    )
    worker = _flow_server(settings, log)
    try:
        verification = _ask_xuzhou_to_verify(make_user)
        request_id = db.session.scalars(
            select(FlowRequest.id).where(FlowRequest.flow_name == verifications.DELIVER)
        ).one()
        _wait(_deployment_served, "the flow server to serve the deployments")
        dispatcher.start(recover=False)

        def taken_by_the_worker() -> bool:
            db.session.expire_all()
            row = db.session.get(FlowRequest, request_id)
            return row.heartbeat_at is not None and row.claimed_by is None

        _wait(taken_by_the_worker, "the served run to take the request")
        first_run = db.session.get(FlowRequest, request_id).flow_run_id
        os.killpg(worker.pid, signal.SIGKILL)  # the runner and the flow's process with it
        worker.wait(timeout=10)
        xuzhou.slow(0)
        worker = _flow_server(settings, log)

        def done() -> bool:
            return _status(request_id) == FlowRequestStatus.DONE

        _wait(done, "the request to run again on the new worker and finish", seconds=START_S + 60)
        finished = db.session.get(FlowRequest, request_id)
        assert finished.attempts == 2 and finished.flow_run_id != first_run and finished.last_error is None
        assert db.session.get(VerificationRequest, verification.id).delivered_at is not None
        assert {r.id for r in xuzhou.verification_requests()} == {verification.public_id}
        with get_client(sync_client=True) as client:  # not left "Running" in Prefect for ever
            assert client.read_flow_run(first_run).state.type == StateType.CRASHED
    finally:
        dispatcher.stop()
        presence.stop()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


@pytest.mark.usefixtures("prefect_harness")
def test_two_prefect_runs_for_one_request_have_one_effect_and_the_first_ends_it(
    flow_app, make_incident
) -> None:
    from flows.incidents import notify_neighbours
    from hub.incidents.models import Notification

    incident = make_incident("linyi", "II")
    request = db.session.scalars(select(FlowRequest)).one()
    # Two runs carrying the same request, as a duplicated trigger or a second worker would start.
    first = notify_neighbours(incident.id, request_id=request.id)
    second = notify_neighbours(incident.id, request_id=request.id)
    assert first == {"recipients": 4, "created": 4} and second == {"recipients": 4, "created": 0}
    db.session.expire_all()
    notified = db.session.scalars(select(Notification).where(Notification.incident_id == incident.id)).all()
    assert len(notified) == len({n.city_id for n in notified}) == 4
    done = db.session.get(FlowRequest, request.id)
    assert (done.status, done.attempts) == (FlowRequestStatus.DONE, 1)
