"""Bulletins as they leave the hub: the exchange model and CAP 1.2."""

from __future__ import annotations

from contracts.bulletins import BulletinMessage
from contracts.cap import CapAlert, alert_from_bulletin
from contracts.common import IncidentCategory, WarningColour
from hub.bulletins.models import Bulletin

SENDER_DOMAIN = "huaihai-hub"


def to_message(bulletin: Bulletin) -> BulletinMessage:
    """Return the bulletin in its exchange form."""
    return BulletinMessage(
        id=bulletin.public_id,
        kind=bulletin.kind,
        issuing_city=bulletin.issuing_city.slug,
        colour=WarningColour(bulletin.colour) if bulletin.colour is not None else None,
        category=IncidentCategory(bulletin.category),
        area=bulletin.area,
        title=bulletin.title,
        text=bulletin.text,
        scope=bulletin.scope,
        addressed_cities=tuple(r.city.slug for r in bulletin.recipients),
        receipt_deadline=bulletin.receipt_deadline,
        issued_at=bulletin.issued_at,
        expires_at=bulletin.expires_at,
        exercise=bulletin.exercise,
        exercise_ref=bulletin.exercise_ref,
        cancelled=bulletin.cancelled_at is not None,
    )


def to_cap(bulletin: Bulletin) -> CapAlert:
    """Return the bulletin as a CAP 1.2 alert with a GB/T 35965.1 identifier."""
    city = bulletin.issuing_city
    return alert_from_bulletin(
        to_message(bulletin),
        sender=f"{city.slug}@{SENDER_DOMAIN}",
        division_code=city.division_code,
        sender_name=f"{city.name_zh}应急管理局",
        cancelled_at=bulletin.cancelled_at,
        addresses=bulletin.cap_addresses,
    )
