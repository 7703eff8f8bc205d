"""Keep the hub's flow-request outbox in step with the Prefect runs that carry it.

A run that starts takes its request (`flow_requests.take`) and beats while it runs, from
whatever process it runs in (the hub's own, or a Prefect worker's), so that the hub's watchdog
can tell a run that died from one that is slow. A second run for the same request (a duplicate
trigger) finds it taken: its end changes nothing, and its tasks, keyed, do nothing twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, TypedDict

from prefect.flows import FlowStateHook

from flows.context import hub_session
from hub.kernel import flow_requests, nodes
from hub.runtime.periodic import Periodic

log = logging.getLogger(__name__)


class _Heartbeat:
    """Beat, every few seconds, for every run of this process that holds its request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: set[str] = set()
        self._periodic: Periodic | None = None

    def add(self, flow_run_id: str) -> None:
        with self._lock:
            self._runs.add(flow_run_id)
            if self._periodic is None:
                self._periodic = Periodic("hub-flow-heartbeat", flow_requests.RUN_BEAT_SECONDS, self._beat)
                self._periodic.start()

    def discard(self, flow_run_id: str) -> None:
        with self._lock:
            self._runs.discard(flow_run_id)

    def _beat(self) -> None:
        with self._lock:
            runs = sorted(self._runs)
        if runs:
            with hub_session() as session:
                flow_requests.beat(session, runs)


_heartbeat = _Heartbeat()


def _request_id(flow_run: Any) -> int | None:
    value = (flow_run.parameters or {}).get("request_id")
    return int(value) if value is not None else None


def _on_running(flow: Any, flow_run: Any, state: Any) -> None:
    request_id = _request_id(flow_run)
    if request_id is None:
        return
    with hub_session() as session:
        took = flow_requests.take(session, request_id, str(flow_run.id), nodes.current())
    if took:
        _heartbeat.add(str(flow_run.id))
    else:
        log.warning(
            "flow run %s: request %s is another run's or over; this run changes nothing",
            flow_run.id,
            request_id,
        )


def _on_completion(flow: Any, flow_run: Any, state: Any) -> None:
    request_id = _request_id(flow_run)
    if request_id is not None:
        _heartbeat.discard(str(flow_run.id))
        with hub_session() as session:
            flow_requests.finish(session, request_id, flow_run_id=str(flow_run.id))


def _on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    request_id = _request_id(flow_run)
    log.error(
        "flow run %s for request %s ended %s: %s",
        flow_run.id,
        request_id,
        state.name,
        state.message,
    )
    if request_id is not None:
        _heartbeat.discard(str(flow_run.id))
        with hub_session() as session:
            flow_requests.finish(
                session, request_id, error=f"{state.name}: {state.message}", flow_run_id=str(flow_run.id)
            )


class _RequestHooks(TypedDict):
    on_running: list[FlowStateHook[..., Any]]
    on_completion: list[FlowStateHook[..., Any]]
    on_failure: list[FlowStateHook[..., Any]]
    on_crashed: list[FlowStateHook[..., Any]]
    on_cancellation: list[FlowStateHook[..., Any]]


# Passed to every hub flow's decorator.
REQUEST_HOOKS: _RequestHooks = {
    "on_running": [_on_running],
    "on_completion": [_on_completion],
    "on_failure": [_on_failure],
    "on_crashed": [_on_failure],
    "on_cancellation": [_on_failure],
}
