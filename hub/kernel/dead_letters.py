"""Keep inbound messages that broke their contract, for a person to look at."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.kernel.models import DeadLetter
from hub.kernel.types import DbSession, utcnow

MAX_KEPT = 4096  # bytes of the payload kept: enough to see what went wrong, bounded on purpose


def record(session: DbSession, source: str, topic: str, reason: str, payload: bytes) -> DeadLetter:
    """Store a dead letter with a bounded copy of the payload."""
    letter = DeadLetter(
        source=source,
        topic=topic[:256],
        reason=reason[:2000],
        received_at=utcnow(),
        size=len(payload),
        payload=bytes(payload[:MAX_KEPT]),
    )
    session.add(letter)
    return letter


def recent(session: DbSession, limit: int = 100) -> list[DeadLetter]:
    """Return the newest dead letters first."""
    return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)))


def count(session: DbSession) -> int:
    """Return how many dead letters there are."""
    return session.scalar(select(func.count()).select_from(DeadLetter)) or 0
