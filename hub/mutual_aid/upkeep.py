"""Mutual aid's upkeep timers: registry entries to verify again, cost signatures to chase, requests to close.

Each is a schedule that asks, on the scheduler's tick, for a keyed flow request, and a step the
flow takes that does its work only if the database says it is still due and not yet done:

- **Verification** (S17, the registry's quality): a city whose entries were not verified for
  `Settings.aid_verify_days` is reminded once a week (`aid:verify:{city}:w{week}`), a
  `reminders` row per city and week; its desk lists what is unverified meanwhile.
- **Cost signatures**: an actual cost still missing a city's signature `SIGN_WITHIN` after it was
  entered is chased, that city reminded once per further `SIGN_WITHIN`
  (`aid:{commitment}:sign:{side}:chase:{round}`).
- **Closing**: an open request that nothing is live on any more (every offer and commitment
  ended: returned, cancelled, declined, withdrawn or expired; every asked city answered or ran
  out of time) ends. It is *closed* when something was dispatched for it; when nothing ever was
  (every asked city declined or stayed silent, or no city had anything to offer) it ends
  *unfilled* (未能满足), once no city is left to ask in any ring. Its key names how many
  commitments and asks it had, so a request that moved between the tick and the flow is looked
  at again at a later tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select, update

from contracts.mutual_aid import AidState, EntryStatus
from hub.kernel import audit, flow_requests
from hub.kernel.models import City, Reminder
from hub.kernel.types import DbSession, affected_rows, table_of, utcnow
from hub.mutual_aid import rules, services
from hub.mutual_aid.models import AidAsk, AidCommitment, AidRequest, AidResource
from hub.mutual_aid.services import TIMER

if TYPE_CHECKING:
    from hub.config import Settings

VERIFY = "aid-remind-verify"
CHASE = "aid-chase-signature"
CLOSE = "aid-close-request"
CLOSED = "closed"
UNFILLED = "unfilled"
UNFILLED_SHOWN = timedelta(days=1)
"""How long a request that ended unfilled stands on its city's desk."""
REMIND_EVERY = timedelta(days=7)
SIGN_WITHIN = timedelta(days=3)
_LIVE = [AidState.OFFERED.value, *(s.value for s in rules.BOOKED_STATES)]
_LISTED = 50  # entries named in a reminder's details; the count says how many there are


def fresh_for(settings: Settings) -> timedelta:
    """Return how long a verification holds before an entry shows as unverified."""
    return timedelta(days=settings.aid_verify_days)


# Verification ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unverified:
    """A city's registry entries in service not verified within the setting, for its desk."""

    city_id: int
    count: int
    oldest: datetime
    days: int
    reminded_at: datetime | None


def _stale(now: datetime, fresh: timedelta) -> ColumnElement[bool]:
    return (AidResource.status != EntryStatus.OUT_OF_SERVICE.value) & (AidResource.verified_at < now - fresh)


def week_of(now: datetime) -> int:
    """Return the reminder period `now` falls in (weeks since the epoch, UTC)."""
    return int(now.timestamp() // REMIND_EVERY.total_seconds())


def unverified(
    session: DbSession, city_id: int, settings: Settings, now: datetime | None = None
) -> Unverified | None:
    """Return how many of the city's entries are unverified, or None when all are fresh."""
    now = now or utcnow()
    fresh = fresh_for(settings)
    count, oldest = session.execute(
        select(func.count(), func.min(AidResource.verified_at)).where(
            AidResource.owner_city_id == city_id, _stale(now, fresh)
        )
    ).one()
    if not count:
        return None
    reminded = session.scalar(
        select(func.max(Reminder.created_at)).where(
            Reminder.kind == "aid_verify", Reminder.city_id == city_id
        )
    )
    return Unverified(city_id, count, oldest, settings.aid_verify_days, reminded)


def schedule_verification(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask, once a week, to remind every city that has unverified entries."""
    week = week_of(now)
    cities = session.scalars(
        select(AidResource.owner_city_id).where(_stale(now, fresh_for(settings))).distinct()
    )
    for city_id in cities:
        flow_requests.enqueue(
            session,
            VERIFY,
            key=f"aid:verify:{city_id}:w{week}",
            parameters={"city_id": city_id, "week": week, "fresh_days": settings.aid_verify_days},
        )


def remind_verification(
    session: DbSession, city_id: int, week: int, fresh_days: int, *, now: datetime | None = None
) -> bool:
    """Remind a city of its unverified entries for one week; return whether a reminder was written now.

    Nothing is written when the city verified everything meanwhile, or was reminded this week.
    """
    now = now or utcnow()
    stale = list(
        session.scalars(
            select(AidResource)
            .where(AidResource.owner_city_id == city_id, _stale(now, timedelta(days=fresh_days)))
            .order_by(AidResource.verified_at, AidResource.id)
        )
    )
    if not stale:
        return False
    exists = session.scalar(
        select(Reminder.id).where(
            Reminder.kind == "aid_verify",
            Reminder.subject_id == week,
            Reminder.city_id == city_id,
            Reminder.stage == "reminded",
        )
    )
    if exists is not None:
        return False
    details: dict[str, object] = {
        "count": len(stale),
        "oldest": stale[0].verified_at.isoformat(),
        "days": fresh_days,
        "entries": [e.external_id for e in stale[:_LISTED]],
    }
    session.add(
        Reminder(kind="aid_verify", subject_id=week, city_id=city_id, stage="reminded", details=details)
    )
    session.flush()
    audit.record(
        session, TIMER, "aid_registry.verify_reminded", "city", city_id, after=details, city_id=city_id
    )
    return True


# Cost signatures ---------------------------------------------------------------------------------


def _unsigned(side: str) -> ColumnElement[bool]:
    column = AidCommitment.owner_signed_at if side == "owner" else AidCommitment.requester_signed_at
    return column.is_(None)


def schedule_signatures(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask to chase each side's signature of an actual cost entered SIGN_WITHIN ago, once per round."""
    late = session.scalars(
        select(AidCommitment).where(
            AidCommitment.actual_cost.is_not(None),
            AidCommitment.actual_cost_at <= now - SIGN_WITHIN,
            _unsigned("owner") | _unsigned("requester"),
        )
    )
    for commitment in late:
        assert commitment.actual_cost_at is not None
        round_ = int((now - commitment.actual_cost_at) / SIGN_WITHIN)
        for side, signed in (
            ("owner", commitment.owner_signed_at),
            ("requester", commitment.requester_signed_at),
        ):
            if signed is None:
                flow_requests.enqueue(
                    session,
                    CHASE,
                    key=f"aid:{commitment.id}:sign:{side}:chase:{round_}",
                    parameters={"commitment_id": commitment.id, "side": side, "round": round_},
                )


def chase_signature(session: DbSession, commitment_id: int, side: str, round_: int) -> bool:
    """Remind one side of a cost it has not signed; return whether it was reminded now.

    Nothing is written when the side signed meanwhile, the cost is frozen or gone, or this
    round was already chased.
    """
    if side not in ("owner", "requester"):
        raise ValueError(f"a cost is signed by the owner or the requester, not {side!r}")
    commitment = session.get(AidCommitment, commitment_id)
    if commitment is None or commitment.actual_cost is None or commitment.cost_frozen:
        return False
    signed = commitment.owner_signed_at if side == "owner" else commitment.requester_signed_at
    if signed is not None:
        return False
    city_id = commitment.owner_city_id if side == "owner" else commitment.requesting_city_id
    stage = f"sign-{round_}"
    exists = session.scalar(
        select(Reminder.id).where(
            Reminder.kind == "aid_cost_sign",
            Reminder.subject_id == commitment.id,
            Reminder.city_id == city_id,
            Reminder.stage == stage,
        )
    )
    if exists is not None:
        return False
    details: dict[str, object] = {
        "side": side,
        "round": round_,
        "actual_cost": str(commitment.actual_cost),
        "entered_at": commitment.actual_cost_at.isoformat() if commitment.actual_cost_at else None,
        "request": str(commitment.request.public_id),
    }
    session.add(
        Reminder(
            kind="aid_cost_sign", subject_id=commitment.id, city_id=city_id, stage=stage, details=details
        )
    )
    session.flush()
    audit.record(
        session,
        TIMER,
        "aid_commitment.signature_chased",
        "aid_commitment",
        commitment.id,
        after=details,
        city_id=city_id,
    )
    return True


def signatures_chased(session: DbSession, city_id: int) -> dict[int, int]:
    """Return, per commitment, how many times the city was chased for its signature."""
    rows = session.execute(
        select(Reminder.subject_id, func.count())
        .where(Reminder.kind == "aid_cost_sign", Reminder.city_id == city_id)
        .group_by(Reminder.subject_id)
    )
    return {subject: count for subject, count in rows.tuples()}


# Closing -----------------------------------------------------------------------------------------


def _counts(session: DbSession, request_id: int, now: datetime) -> tuple[int, int, int, int]:
    """Return (commitments, live commitments, asks, asks still waiting for an answer in time)."""
    commitments, live = session.execute(
        select(func.count(), func.count().filter(AidCommitment.state.in_(_LIVE))).where(
            AidCommitment.request_id == request_id
        )
    ).one()
    asks, waiting = session.execute(
        select(
            func.count(), func.count().filter(AidAsk.answered_at.is_(None) & (AidAsk.deadline > now))
        ).where(AidAsk.request_id == request_id)
    ).one()
    return commitments, live, asks, waiting


def _dispatched(session: DbSession, request_id: int) -> bool:
    """Return whether anything was ever dispatched for the request."""
    found = session.scalar(
        select(AidCommitment.id)
        .where(AidCommitment.request_id == request_id, AidCommitment.dispatched > 0)
        .limit(1)
    )
    return found is not None


def nobody_left(session: DbSession, request: AidRequest, fresh_for: timedelta) -> bool:
    """Return whether every city with something that fits the request was asked already."""
    asked = {ask.city_id for ask in services.asks(session, request.id)}
    rings = services.sourcing_rings(session, request, fresh_for=fresh_for)
    slugs = {slug for ring in rings for slug in ring.cities}
    if not slugs:
        return True
    ids = set(session.scalars(select(City.id).where(City.slug.in_(slugs))))
    return ids <= asked


def _finished(
    session: DbSession, request: AidRequest, now: datetime, fresh_for: timedelta
) -> tuple[str, int, int] | None:
    """Return how the request ends (closed or unfilled) with its counts, or None while it goes on.

    A request that asked nobody yet gets its first ring's window before it can end unfilled.
    """
    commitments, live, asks, waiting = _counts(session, request.id, now)
    if live or waiting:
        return None
    if _dispatched(session, request.id):
        return CLOSED, commitments, asks
    if asks == 0 and request.created_at > now - services.ASK_WINDOW:
        return None
    if not nobody_left(session, request, fresh_for):
        return None
    return UNFILLED, commitments, asks


def schedule_closing(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask to end every open request with nothing live on it: closed, or unfilled when nothing came."""
    live = select(AidCommitment.id).where(
        AidCommitment.request_id == AidRequest.id, AidCommitment.state.in_(_LIVE)
    )
    waiting = select(AidAsk.id).where(
        AidAsk.request_id == AidRequest.id, AidAsk.answered_at.is_(None), AidAsk.deadline > now
    )
    quiet = session.scalars(
        select(AidRequest).where(AidRequest.status == "open", ~live.exists(), ~waiting.exists())
    )
    for request in quiet:
        found = _finished(session, request, now, fresh_for(settings))
        if found is None:
            continue
        _, commitments, asks = found
        flow_requests.enqueue(
            session,
            CLOSE,
            key=f"aid:{request.id}:close:c{commitments}:a{asks}",
            parameters={"aid_request_id": request.id},
        )


def close_if_done(
    session: DbSession, request_id: int, *, fresh_for: timedelta, now: datetime | None = None
) -> bool:
    """End an open request with nothing live on it, closed or unfilled; return whether it ended now."""
    now = now or utcnow()
    request = session.get(AidRequest, request_id)
    if request is None or request.status != "open":
        return False
    found = _finished(session, request, now, fresh_for)
    if found is None:
        return False
    status = found[0]
    table = table_of(AidRequest)
    result = session.execute(
        update(table)
        .where(table.c.id == request_id, table.c.status == "open")
        .values(status=status, updated_at=now)
    )
    if affected_rows(result) != 1:
        return False
    sums = session.execute(
        select(
            AidCommitment.line_id,
            func.sum(AidCommitment.dispatched),
            func.sum(AidCommitment.returned),
            func.sum(AidCommitment.consumed),
            func.sum(AidCommitment.lost),
        )
        .where(AidCommitment.request_id == request_id)
        .group_by(AidCommitment.line_id)
    )
    lines = {
        str(line_id): {"dispatched": str(d), "returned": str(r), "consumed": str(c), "lost": str(lo)}
        for line_id, d, r, c, lo in sums.tuples()
    }
    after: dict[str, object] = {"lines": lines}
    if status == UNFILLED:
        answers = session.execute(
            select(AidAsk.answer, func.count()).where(AidAsk.request_id == request_id).group_by(AidAsk.answer)
        )
        after["asks"] = {answer or "silent": count for answer, count in answers.tuples()}
    audit.record(session, TIMER, f"aid_request.{status}", "aid_request", request_id, after=after)
    return True


def unfilled_lately(session: DbSession, city_id: int, now: datetime | None = None) -> list[AidRequest]:
    """Return the city's requests that ended unfilled within UNFILLED_SHOWN, newest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(AidRequest)
            .where(
                AidRequest.requesting_city_id == city_id,
                AidRequest.status == UNFILLED,
                AidRequest.updated_at > now - UNFILLED_SHOWN,
            )
            .order_by(AidRequest.updated_at.desc(), AidRequest.id.desc())
        )
    )
