"""Keep the hub's flow-request outbox in step with the Prefect runs that carry it."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

from prefect.flows import FlowStateHook

from flows.context import hub_session
from hub.kernel import flow_requests

log = logging.getLogger(__name__)


def _request_id(flow_run: Any) -> int | None:
    value = (flow_run.parameters or {}).get("request_id")
    return int(value) if value is not None else None


def _on_running(flow: Any, flow_run: Any, state: Any) -> None:
    request_id = _request_id(flow_run)
    if request_id is not None:
        with hub_session() as session:
            flow_requests.set_flow_run(session, request_id, str(flow_run.id))


def _on_completion(flow: Any, flow_run: Any, state: Any) -> None:
    request_id = _request_id(flow_run)
    if request_id is not None:
        with hub_session() as session:
            flow_requests.finish(session, request_id)


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
        with hub_session() as session:
            flow_requests.finish(session, request_id, error=f"{state.name}: {state.message}")


class _RequestHooks(TypedDict):
    on_running: list[FlowStateHook[..., Any]]
    on_completion: list[FlowStateHook[..., Any]]
    on_failure: list[FlowStateHook[..., Any]]
    on_crashed: list[FlowStateHook[..., Any]]


# Passed to every hub flow's decorator.
REQUEST_HOOKS: _RequestHooks = {
    "on_running": [_on_running],
    "on_completion": [_on_completion],
    "on_failure": [_on_failure],
    "on_crashed": [_on_failure],
}
