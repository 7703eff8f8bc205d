"""The outbox of flows to start: written with their cause, claimed by the flow dispatcher."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

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


def claim(session: DbSession, request_id: int) -> FlowRequest | None:
    """Mark a pending request started; return it, or None if another dispatcher took it first."""
    result = session.execute(
        update(FlowRequest)
        .where(FlowRequest.id == request_id, FlowRequest.status == FlowRequestStatus.PENDING)
        .values(status=FlowRequestStatus.STARTED, started_at=utcnow(), attempts=FlowRequest.attempts + 1)
    )
    if affected_rows(result) != 1:
        return None
    return session.get(FlowRequest, request_id)


def set_flow_run(session: DbSession, request_id: int, flow_run_id: str) -> None:
    """Remember which Prefect flow run carries the request."""
    session.execute(update(FlowRequest).where(FlowRequest.id == request_id).values(flow_run_id=flow_run_id))


def finish(session: DbSession, request_id: int, *, error: str | None = None) -> None:
    """Record the end of a request's run, successful or not."""
    session.execute(
        update(FlowRequest)
        .where(FlowRequest.id == request_id)
        .values(
            status=FlowRequestStatus.FAILED if error else FlowRequestStatus.DONE,
            finished_at=utcnow(),
            last_error=error[:2000] if error else None,
        )
    )


def requeue_interrupted(session: DbSession) -> int:
    """Put requests that were started but never finished back in the queue (after a crash)."""
    result = session.execute(
        update(FlowRequest)
        .where(FlowRequest.status == FlowRequestStatus.STARTED)
        .values(status=FlowRequestStatus.PENDING)
    )
    return affected_rows(result)


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
