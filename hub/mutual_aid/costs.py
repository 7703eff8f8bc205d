"""The cost of each commitment: the estimate from the offer, the actual cost and its signatures.

The owner enters the actual cost once the resource is back; each city then signs it for its own
side, and a cost both cities signed is frozen. Every change is a conditional UPDATE on what the
caller saw (the amount, the signature still missing), so an edit racing a signature cannot slip
an unsigned amount under a signature, and every change is audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import literal, select, update

from contracts.mutual_aid import AidState
from hub.incidents import services as incidents
from hub.kernel import audit
from hub.kernel import cities as city_service
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.types import DbSession, affected_rows, table_of, utcnow
from hub.mutual_aid import rules, services
from hub.mutual_aid.models import MONEY, AidCommitment, AidRequest

CENT = Decimal("0.01")
MAX_COST = Decimal(10**12)

CSV_COLUMNS = (
    "request",
    "request_title",
    "commitment",
    "line",
    "owner_city",
    "requesting_city",
    "resource",
    "quantity",
    "unit",
    "start",
    "end",
    "state",
    "exercise",
    "currency",
    "estimated_cost",
    "actual_cost",
    "actual_cost_note",
    "owner_signed_by",
    "owner_signed_at",
    "requester_signed_by",
    "requester_signed_at",
    "frozen",
)


class Side(StrEnum):
    """The side of a commitment a city signs its cost for."""

    OWNER = "owner"
    REQUESTER = "requester"


def _snapshot(commitment: AidCommitment) -> dict[str, object]:
    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "estimated_cost": str(commitment.estimated_cost),
        "actual_cost": None if commitment.actual_cost is None else str(commitment.actual_cost),
        "actual_cost_note": commitment.actual_cost_note,
        "owner_signed_by": commitment.owner_signed_by,
        "owner_signed_at": at(commitment.owner_signed_at),
        "requester_signed_by": commitment.requester_signed_by,
        "requester_signed_at": at(commitment.requester_signed_at),
    }


def _side(actor: Actor, commitment: AidCommitment, what: str) -> Side:
    """Return the side the actor's city takes in the commitment, or refuse anyone else."""
    role = services.role_in(actor, commitment, what)
    if role is rules.Role.OWNER:
        return Side.OWNER
    if role is rules.Role.REQUESTER:
        return Side.REQUESTER
    raise Forbidden(f"only the owning and the requesting city may {what}")


def _audit(
    session: DbSession, actor: Actor, commitment: AidCommitment, action: str, before: dict[str, object]
) -> None:
    session.flush()
    audit.record(
        session,
        actor,
        f"aid_commitment.{action}",
        "aid_commitment",
        commitment.id,
        before=before,
        after=_snapshot(commitment),
    )


def enter_actual_cost(
    session: DbSession, actor: Actor, commitment_id: int, amount: Decimal, note: str = ""
) -> AidCommitment:
    """Enter (or correct, until both cities signed) the actual cost, for the owner city only.

    A changed amount takes back a signature already given: a city signs the amount it saw.
    """
    commitment = services.get_commitment(session, commitment_id)
    if _side(actor, commitment, "enter the actual cost") is not Side.OWNER:
        raise Forbidden("only the owning city enters the actual cost")
    if commitment.cost_frozen:
        raise Conflict("both cities signed the cost; it is frozen")
    if AidState(commitment.state) is not AidState.RETURNED:
        raise Conflict(f"the actual cost is entered after the return; the commitment is {commitment.state}")
    if amount < 0 or amount > MAX_COST or amount != amount.quantize(CENT):
        raise InvalidInput("the actual cost is a non-negative amount in yuan with at most two places")
    before = _snapshot(commitment)
    table = table_of(AidCommitment)
    values: dict[str, object] = {
        "actual_cost": amount,
        "actual_cost_note": note.strip()[:500],
        "actual_cost_by": actor.name[:64],
        "actual_cost_at": utcnow(),
        "updated_at": utcnow(),
    }
    if commitment.actual_cost != amount:
        values |= {
            "owner_signed_by": None,
            "owner_signed_at": None,
            "requester_signed_by": None,
            "requester_signed_at": None,
        }
    result = session.execute(
        update(table)
        .where(
            table.c.id == commitment.id,
            (table.c.owner_signed_at.is_(None)) | (table.c.requester_signed_at.is_(None)),
        )
        .values(**values)
    )
    session.refresh(commitment)
    if affected_rows(result) != 1:
        raise Conflict("both cities signed the cost; it is frozen")
    _audit(session, actor, commitment, "cost_entered", before)
    return commitment


def sign_cost(
    session: DbSession, actor: Actor, commitment_id: int, side: Side | None = None
) -> AidCommitment:
    """Sign the actual cost for the actor's own side; once both sides signed it is frozen."""
    commitment = services.get_commitment(session, commitment_id)
    own = _side(actor, commitment, "sign the cost")
    if side is not None and side is not own:
        raise Forbidden(f"your city signs for the {own.value} side only")
    if commitment.cost_frozen:
        raise Conflict("both cities signed the cost; it is frozen")
    if commitment.actual_cost is None:
        raise Conflict("the owning city has not entered the actual cost yet")
    if (commitment.owner_signed_at if own is Side.OWNER else commitment.requester_signed_at) is not None:
        raise Conflict(f"the {own.value} side already signed")
    before = _snapshot(commitment)
    table = table_of(AidCommitment)
    signed_at = table.c.owner_signed_at if own is Side.OWNER else table.c.requester_signed_at
    now = utcnow()
    result = session.execute(
        update(table)
        .where(
            table.c.id == commitment.id,
            signed_at.is_(None),
            table.c.actual_cost == _money(commitment.actual_cost),
        )
        .values({f"{own.value}_signed_by": actor.name[:64], f"{own.value}_signed_at": now, "updated_at": now})
    )
    session.refresh(commitment)
    if affected_rows(result) != 1:
        raise Conflict("the cost changed meanwhile; look at it again before signing")
    _audit(session, actor, commitment, "cost_signed", before)
    return commitment


def _money(amount: Decimal) -> object:
    """Bind an amount in the stored scale, to compare it with the column in SQL."""
    return literal(amount, MONEY)


def signs_owed(commitment: AidCommitment, city_id: int | None) -> bool:
    """Return whether the city still owes its signature of the commitment's actual cost."""
    if commitment.actual_cost is None or commitment.cost_frozen:
        return False
    if city_id == commitment.owner_city_id:
        return commitment.owner_signed_at is None
    if city_id == commitment.requesting_city_id:
        return commitment.requester_signed_at is None
    return False


# Export ------------------------------------------------------------------------------------------


def for_incident(session: DbSession, incident_public_id: uuid.UUID) -> list[AidCommitment]:
    """Return the commitments of the requests made for an incident (offers never accepted left out)."""
    incident_id = incidents.id_for_public_id(session, incident_public_id)
    return list(
        session.scalars(
            select(AidCommitment)
            .join(AidRequest, AidCommitment.request_id == AidRequest.id)
            .where(AidRequest.incident_id == incident_id, AidCommitment.state.in_(_COSTED))
            .order_by(AidCommitment.id)
        )
    )


def for_city_year(session: DbSession, slug: str, year: int) -> list[AidCommitment]:
    """Return the commitments a city gave or received that started in `year` (UTC)."""
    if not 2000 <= year <= 2100:
        raise InvalidInput("the year is between 2000 and 2100")
    city = city_service.by_slug(session, slug)
    mine = (AidCommitment.owner_city_id == city.id) | (AidCommitment.requesting_city_id == city.id)
    return list(
        session.scalars(
            select(AidCommitment)
            .where(
                mine,
                AidCommitment.start_at >= datetime(year, 1, 1, tzinfo=UTC),
                AidCommitment.start_at < datetime(year + 1, 1, 1, tzinfo=UTC),
                AidCommitment.state.in_(_COSTED),
            )
            .order_by(AidCommitment.start_at, AidCommitment.id)
        )
    )


# A commitment costs something once it was accepted; offers declined, withdrawn or expired do not.
_COSTED = [
    s.value
    for s in AidState
    if s not in {AidState.OFFERED, AidState.DECLINED, AidState.WITHDRAWN, AidState.EXPIRED}
]


def csv_rows(commitments: list[AidCommitment]) -> list[dict[str, str]]:
    """Return one CSV row per commitment, money in yuan with two places, times in ISO 8601."""

    def at(value: datetime | None) -> str:
        return value.isoformat() if value is not None else ""

    return [
        {
            "request": str(c.request.public_id),
            "request_title": c.request.title,
            "commitment": str(c.public_id),
            "line": c.line.line_id,
            "owner_city": c.owner_city.slug,
            "requesting_city": c.requesting_city.slug,
            "resource": c.resource.name,
            "quantity": str(c.quantity),
            "unit": c.resource.unit,
            "start": at(c.start_at),
            "end": at(c.end_at),
            "state": c.state,
            "exercise": "yes" if c.exercise else "no",
            "currency": "CNY",
            "estimated_cost": str(c.estimated_cost),
            "actual_cost": "" if c.actual_cost is None else str(c.actual_cost),
            "actual_cost_note": c.actual_cost_note,
            "owner_signed_by": c.owner_signed_by or "",
            "owner_signed_at": at(c.owner_signed_at),
            "requester_signed_by": c.requester_signed_by or "",
            "requester_signed_at": at(c.requester_signed_at),
            "frozen": "yes" if c.cost_frozen else "no",
        }
        for c in commitments
    ]
