"""The outbox of flows to start: written with their cause, claimed by the flow dispatcher.

A claimed request is held by a node (the dispatcher that claimed it; then, for a run in a hub
process, that process) and by the run that took it (`flow_run_id`), which beats while it runs.
The watchdog (`requeue_orphaned`) puts a started request back in the queue when its holder is
dead or its run has gone quiet, so a killed process or worker loses no work.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, or_, select, update

from hub.kernel.models import FlowRequest, FlowRequestStatus
from hub.kernel.types import DbSession, affected_rows, utcnow


def enqueue(session: DbSession, flow_name: str, key: str, parameters: dict[str, object]) -> FlowRequest:
    """Ask for a flow run; the same key returns the existing request instead of a second one."""
    existing = session.scalar(select(FlowRequest).where(FlowRequest.key == key))
    if existing is not None:
        return existing
    request = FlowRequest(
        flow_name=flow_name,
        key=key,
        parameters=parameters,
        status=FlowRequestStatus.PENDING,
        attempts=0,
    )
    session.add(request)
    session.flush()
    return request


def pending_ids(session: DbSession, limit: int = 50) -> list[int]:
    """Return the ids of requests waiting to be started, oldest first."""
    query = (
        select(FlowRequest.id)
        .where(FlowRequest.status == FlowRequestStatus.PENDING)
        .order_by(FlowRequest.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(session: DbSession, request_id: int, node: str | None = None) -> FlowRequest | None:
    """Mark a pending request started by `node`; return it, or None if another dispatcher took it."""
    result = session.execute(
        update(FlowRequest)
        .where(FlowRequest.id == request_id, FlowRequest.status == FlowRequestStatus.PENDING)
        .values(
            status=FlowRequestStatus.STARTED,
            started_at=utcnow(),
            attempts=FlowRequest.attempts + 1,
            claimed_by=node,
            flow_run_id=None,
            heartbeat_at=None,
        )
    )
    if affected_rows(result) != 1:
        return None
    return session.get(FlowRequest, request_id)


def _unheld_or_held_by(flow_run_id: str) -> ColumnElement[bool]:
    return and_(
        FlowRequest.status == FlowRequestStatus.STARTED,
        or_(FlowRequest.flow_run_id.is_(None), FlowRequest.flow_run_id == flow_run_id),
    )


def set_flow_run(session: DbSession, request_id: int, flow_run_id: str) -> bool:
    """Remember which Prefect flow run carries the request, unless another run took it first."""
    result = session.execute(
        update(FlowRequest)
        .where(FlowRequest.id == request_id, _unheld_or_held_by(flow_run_id))
        .values(flow_run_id=flow_run_id)
    )
    return affected_rows(result) == 1


def take(session: DbSession, request_id: int, flow_run_id: str, node: str | None) -> bool:
    """Let a run that starts hold its request; False when another run holds it (a duplicate)
    or the request is over.

    A run may also start for a request no dispatcher claimed yet (by hand, or a second trigger):
    it then claims it itself, so the dispatcher will not start another. `node` is the hub
    process the run lives in, or None for a run in a Prefect worker, which only its heartbeat
    vouches for.
    """
    pending = FlowRequest.status == FlowRequestStatus.PENDING
    result = session.execute(
        update(FlowRequest)
        .where(FlowRequest.id == request_id, or_(pending, _unheld_or_held_by(flow_run_id)))
        .values(
            status=FlowRequestStatus.STARTED,
            attempts=FlowRequest.attempts + case((pending, 1), else_=0),
            started_at=case((pending, utcnow()), else_=FlowRequest.started_at),
            flow_run_id=flow_run_id,
            claimed_by=node,
            heartbeat_at=utcnow(),
        )
    )
    return affected_rows(result) == 1


def beat(session: DbSession, flow_run_ids: list[str]) -> None:
    """Record that these runs are still running."""
    if flow_run_ids:
        session.execute(
            update(FlowRequest)
            .where(FlowRequest.flow_run_id.in_(flow_run_ids), FlowRequest.status == FlowRequestStatus.STARTED)
            .values(heartbeat_at=utcnow())
        )


def finish(
    session: DbSession, request_id: int, *, error: str | None = None, flow_run_id: str | None = None
) -> bool:
    """Record the end of a request's run, successful or not.

    With `flow_run_id`, only if no other run holds the request: a duplicate run, or one the
    watchdog gave up on, changes nothing. (A run whose take was lost, say to a locked database,
    still ends its request.)
    """
    query = update(FlowRequest).where(FlowRequest.id == request_id)
    if flow_run_id is not None:
        query = query.where(_unheld_or_held_by(flow_run_id))
    result = session.execute(
        query.values(
            status=FlowRequestStatus.FAILED if error else FlowRequestStatus.DONE,
            finished_at=utcnow(),
            last_error=error[:2000] if error else None,
        )
    )
    return affected_rows(result) == 1


# A run beats every RUN_BEAT_SECONDS; one quiet for RUN_QUIET_AFTER is taken for dead.
RUN_BEAT_SECONDS = 10.0
RUN_QUIET_AFTER = timedelta(seconds=60)


def requeue_orphaned(
    session: DbSession, now: datetime, live_nodes: set[str], quiet_after: timedelta = RUN_QUIET_AFTER
) -> dict[int, str | None]:
    """Put back in the queue the started requests nobody carries any more; return their ids, each
    with the flow run that had taken it (which will never end by itself).

    Orphaned: held by a node that is not alive, or taken by a run that stopped beating, or
    neither held nor taken (left by a hub older than the watchdog).
    """
    orphaned = and_(
        FlowRequest.status == FlowRequestStatus.STARTED,
        or_(
            and_(FlowRequest.claimed_by.is_not(None), FlowRequest.claimed_by.not_in(live_nodes or {""})),
            FlowRequest.heartbeat_at < now - quiet_after,
            and_(FlowRequest.claimed_by.is_(None), FlowRequest.heartbeat_at.is_(None)),
        ),
    )
    found = {
        row.id: row.flow_run_id
        for row in session.execute(select(FlowRequest.id, FlowRequest.flow_run_id).where(orphaned))
    }
    ids = list(found)
    if ids:
        # The same condition again, so a run that took or beat meanwhile keeps its request.
        session.execute(
            update(FlowRequest)
            .where(FlowRequest.id.in_(ids), orphaned)
            .values(status=FlowRequestStatus.PENDING, claimed_by=None, flow_run_id=None, heartbeat_at=None)
            .execution_options(synchronize_session=False)
        )
    return found


RETRY_BACKOFF = timedelta(seconds=30)


def retry_failed(session: DbSession, max_attempts: int = 5) -> int:
    """Requeue failed requests with attempts left, waiting longer after each failure."""
    now = utcnow()
    due = [
        request.id
        for request in session.scalars(
            select(FlowRequest).where(
                FlowRequest.status == FlowRequestStatus.FAILED,
                FlowRequest.attempts < max_attempts,
            )
        )
        if request.finished_at is None or request.finished_at + RETRY_BACKOFF * request.attempts <= now
    ]
    if not due:
        return 0
    session.execute(
        update(FlowRequest).where(FlowRequest.id.in_(due)).values(status=FlowRequestStatus.PENDING)
    )
    return len(due)
