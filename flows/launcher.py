"""The one seam through which the hub starts flows: locally, or through a Prefect deployment.

The dispatcher claims pending requests for its node and starts their runs; its watchdog puts
back in the queue the started requests whose node died or whose run stopped beating
(`flow_requests.requeue_orphaned`), whichever process or Prefect worker ran them.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from flows.context import hub_session
from flows.registry import DEPLOYMENT_NAME, flows
from hub.kernel import flow_requests, nodes
from hub.kernel.types import utcnow

log = logging.getLogger(__name__)


class Launcher(Protocol):
    """Starts one flow run for a claimed request."""

    def launch(
        self, request_id: int, attempt: int, flow_name: str, parameters: dict[str, object]
    ) -> None: ...

    def abandon(self, flow_run_id: str) -> None: ...

    def shutdown(self) -> None: ...


class LocalLauncher:
    """Run flows in this process, on a small pool of threads (the one-machine default)."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-flow")

    def launch(self, request_id: int, attempt: int, flow_name: str, parameters: dict[str, object]) -> None:
        """Submit the flow to the pool; its hooks record how it ended."""
        self._pool.submit(self._run, request_id, flow_name, parameters)

    @staticmethod
    def _run(request_id: int, flow_name: str, parameters: dict[str, object]) -> None:
        try:
            flows()[flow_name](**parameters, request_id=request_id)
        except Exception:
            # The flow's failure hook has recorded the error on the request; the dispatcher retries.
            log.exception("flow %s for request %s failed", flow_name, request_id)

    def abandon(self, flow_run_id: str) -> None:
        """Nothing to do: a local run dies with its process, and Prefect's record of it is kept."""

    def shutdown(self) -> None:
        """Wait for running flows to end."""
        self._pool.shutdown(wait=True)


class DeploymentLauncher:
    """Hand flows to Prefect deployments served by `hub flows serve` or workers elsewhere."""

    def launch(self, request_id: int, attempt: int, flow_name: str, parameters: dict[str, object]) -> None:
        """Create a deployment run and return at once; the run's hooks record how it ended.

        One run per attempt: a request the watchdog requeued gets a new run, not the dead one.
        """
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        run = run_deployment(
            f"{flow_name}/{DEPLOYMENT_NAME}",
            parameters={**parameters, "request_id": request_id},
            timeout=0,
            idempotency_key=f"hub-request-{request_id}-{attempt}",
            # The dispatcher thread wants the run itself, even if a loop runs nearby.
            _sync=True,  # type: ignore[call-arg]  # Prefect's async dispatch takes it; its signature omits it
        )
        if not isinstance(run, FlowRun):
            raise TypeError(f"run_deployment gave {type(run).__name__}, not the flow run")
        with hub_session() as session:
            flow_requests.set_flow_run(session, request_id, str(run.id))

    def abandon(self, flow_run_id: str) -> None:
        """Mark a run whose worker died as crashed in Prefect, where it would stay Running."""
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                flow_run_id, Crashed(message="the hub's watchdog heard nothing from it"), force=True
            )

    def shutdown(self) -> None:
        """Nothing to wait for: the runs live in Prefect."""


# How often a dispatcher with a node looks for orphaned requests.
WATCH_SECONDS = 10.0


class FlowDispatcher:
    """Start pending flow requests from the outbox, at once when woken and on a slow poll."""

    def __init__(
        self,
        launcher: Launcher,
        *,
        poll_seconds: float = 2.0,
        max_attempts: int = 5,
        node: str | None = None,
        watch_every: float = WATCH_SECONDS,
        run_quiet_after: timedelta = flow_requests.RUN_QUIET_AFTER,
    ) -> None:
        self.launcher = launcher
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        # The registered hub node this dispatcher claims for; without one there is no watchdog
        # (its claims could not be told from a dead node's), only the recovery at start.
        self.node = node
        self.watch_every = watch_every
        self.run_quiet_after = run_quiet_after
        self._next_watch = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # When its loop last came round (time.monotonic()), for the status page.
        self.last_loop: float | None = None

    def start(self, *, recover: bool = True) -> None:
        """Start dispatching; with `recover` or a node, first requeue what dead processes left."""
        if recover or self.node is not None:
            self.watch()
        self._thread = threading.Thread(target=self._loop, name="hub-flow-dispatcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for pending requests now."""
        self._wake.set()

    def stop(self) -> None:
        """Stop dispatching and wait for running local flows."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.launcher.shutdown()

    def watch(self) -> list[int]:
        """Requeue the started requests no live node or run carries; return their ids."""
        with hub_session() as session:
            requeued = flow_requests.requeue_orphaned(
                session, utcnow(), nodes.live_names(session), self.run_quiet_after
            )
        if requeued:
            log.warning("requeued flow requests %s: their process or run is gone", sorted(requeued))
        for flow_run_id in filter(None, requeued.values()):
            try:
                self.launcher.abandon(flow_run_id)
            except Exception:
                # Only Prefect's record is at stake: the request runs again either way.
                log.exception("could not mark flow run %s crashed", flow_run_id)
        return sorted(requeued)

    def dispatch_once(self) -> int:
        """Start every pending request; return how many were started."""
        with hub_session() as session:
            flow_requests.retry_failed(session, self.max_attempts)
            ids = flow_requests.pending_ids(session)
        started = 0
        for request_id in ids:
            with hub_session() as session:
                request = flow_requests.claim(session, request_id, self.node)
                if request is None:
                    continue
                flow_name, parameters, attempt = request.flow_name, dict(request.parameters), request.attempts
            try:
                self.launcher.launch(request_id, attempt, flow_name, parameters)
            except Exception as exc:
                log.exception("could not start flow %s for request %s", flow_name, request_id)
                with hub_session() as session:
                    flow_requests.finish(session, request_id, error=f"launch failed: {exc}")
                continue
            started += 1
        return started

    def alive(self) -> bool:
        """Tell whether the loop runs and came round lately (within three polls)."""
        thread, last = self._thread, self.last_loop
        return bool(thread and thread.is_alive() and last and time.monotonic() - last < 3 * self.poll_seconds)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last_loop = time.monotonic()
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self.node is not None and time.monotonic() >= self._next_watch:
                    self._next_watch = time.monotonic() + self.watch_every
                    self.watch()
                self.dispatch_once()
            except Exception:
                # The database may be briefly unavailable; the next round tries again.
                log.exception("flow dispatch round failed")
