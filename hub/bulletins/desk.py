"""What the bulletins capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import case, func, select

from hub.bulletins import services
from hub.bulletins.models import Bulletin, BulletinRecipient
from hub.capabilities import DeskItem
from hub.kernel.types import DbSession, utcnow

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Bulletins and warnings addressed to the city that no person has signed yet, by deadline.

    Its platform having accepted one changes nothing here: the item stays until a person signs
    (签收). Each alerts when it arrives and again when it falls late (its key names the stage),
    until a person acknowledges that stage; an exercise bulletin goes to the exercise lane.
    """
    now = utcnow()
    items = []
    for recipient in services.owed_receipts(session, city_id):
        stage = "late" if services.is_late(recipient, now) else "owed"
        key = f"bulletins:receipt:{recipient.id}:{stage}"
        exercise = recipient.bulletin.exercise
        items.append(
            DeskItem(
                "bulletins/_urgent.html",
                recipient,
                recipient.bulletin.receipt_deadline,
                key=key,
                exercise=exercise,
                alert=not exercise,
            )
        )
    return items


def waiting(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Cities flagged as late with a receipt for one of this city's bulletins."""
    return [DeskItem("bulletins/_waiting.html", r) for r in services.flagged_for_issuer(session, city_id)]


def version(session: DbSession) -> dict[int | None, object]:
    """Per addressee: what it owes (the newest, how many, delivered, cancelled, late by now); per
    issuer: its addressees still owing and those flagged.

    A desk shows unsigned receipts only, so only those rows are read, through the partial index
    of unsigned ones: a year of signed receipts costs nothing here. A receipt signed leaves the
    counts; a new one is the newest owed.
    """
    now = utcnow()
    unsigned = BulletinRecipient.receipt_at.is_(None)
    owed = (
        select(
            BulletinRecipient.city_id,
            func.count(),
            func.max(BulletinRecipient.id),
            func.count(BulletinRecipient.delivered_at),
            func.count(Bulletin.cancelled_at),
            func.sum(case((Bulletin.receipt_deadline <= now, 1), else_=0)),
        )
        .join(Bulletin)
        .where(unsigned)
        .group_by(BulletinRecipient.city_id)
    )
    found: dict[int | None, object] = {row[0]: tuple(row[1:]) for row in session.execute(owed)}
    flagged = (
        select(Bulletin.issuing_city_id, func.count(), func.count(BulletinRecipient.flagged_at))
        .join(Bulletin)
        .where(unsigned)
        .group_by(Bulletin.issuing_city_id)
    )
    for city_id, n_owed, n_flagged in session.execute(flagged):
        found[city_id] = (found.get(city_id), n_owed, n_flagged)
    return found
