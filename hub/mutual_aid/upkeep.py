"""Mutual aid's upkeep timers: registry entries to verify again, cost signatures to chase, requests to close.

Each is a schedule that asks, on the scheduler's tick, for a keyed flow request, and a step the
flow takes that does its work only if the database says it is still due and not yet done:

- **Verification** (S17, the registry's quality): a city whose entries were not verified for
  `Settings.aid_verify_days` is reminded once a week (`aid:verify:{city}:w{week}`), a
  `reminders` row per city and week; its desk lists what is unverified meanwhile.
- **Cost signatures**: an actual cost still missing a city's signature `SIGN_WITHIN` after it was
  entered is chased, that city reminded once per further `SIGN_WITHIN`
  (`aid:{commitment}:sign:{side}:chase:{round}`).
- **Closing**: an open request whose every offer and commitment has ended (returned, cancelled,
  declined, withdrawn or expired) and whose asked cities have all answered or run out of time
  closes itself. Its key names how many commitments and asks it had, so a request that moved
  between the tick and the flow is looked at again at a later tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, select, update

from contracts.mutual_aid import AidState, EntryStatus
from hub.kernel import audit, flow_requests
from hub.kernel.models import Reminder
from hub.kernel.types import DbSession, affected_rows, table_of, utcnow
from hub.mutual_aid import rules
from hub.mutual_aid.models import AidAsk, AidCommitment, AidRequest, AidResource
from hub.mutual_aid.services import TIMER

if TYPE_CHECKING:
    from hub.config import Settings

VERIFY = "aid-remind-verify"
CHASE = "aid-chase-signature"
CLOSE = "aid-close-request"
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


def schedule_closing(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask to close every open request with commitments, none of them live, and nobody left to answer."""
    live = select(AidCommitment.id).where(
        AidCommitment.request_id == AidRequest.id, AidCommitment.state.in_(_LIVE)
    )
    any_commitment = select(AidCommitment.id).where(AidCommitment.request_id == AidRequest.id)
    waiting = select(AidAsk.id).where(
        AidAsk.request_id == AidRequest.id, AidAsk.answered_at.is_(None), AidAsk.deadline > now
    )
    done = session.scalars(
        select(AidRequest.id).where(
            AidRequest.status == "open", any_commitment.exists(), ~live.exists(), ~waiting.exists()
        )
    )
    for request_id in done:
        commitments, _, asks, _ = _counts(session, request_id, now)
        flow_requests.enqueue(
            session,
            CLOSE,
            key=f"aid:{request_id}:close:c{commitments}:a{asks}",
            parameters={"aid_request_id": request_id},
        )


def close_if_done(session: DbSession, request_id: int, *, now: datetime | None = None) -> bool:
    """Close an open request whose offers and commitments all ended; return whether it closed now."""
    now = now or utcnow()
    commitments, live, _, waiting = _counts(session, request_id, now)
    if commitments == 0 or live or waiting:
        return False
    table = table_of(AidRequest)
    result = session.execute(
        update(table)
        .where(table.c.id == request_id, table.c.status == "open")
        .values(status="closed", updated_at=now)
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
    audit.record(session, TIMER, "aid_request.closed", "aid_request", request_id, after={"lines": lines})
    return True
