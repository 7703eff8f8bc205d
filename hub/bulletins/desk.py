"""What the bulletins capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.bulletins import services
from hub.capabilities import DeskItem
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Receipts the city owes, by their deadline."""
    return [
        DeskItem("bulletins/_urgent.html", recipient, recipient.bulletin.receipt_deadline)
        for recipient in services.owed_receipts(session, city_id)
    ]


def waiting(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Cities flagged as late with a receipt for one of this city's bulletins."""
    return [DeskItem("bulletins/_waiting.html", r) for r in services.flagged_for_issuer(session, city_id)]
