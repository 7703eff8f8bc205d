"""Builders of registry entries, requests and offers for the mutual-aid service tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts.mutual_aid import AidPackage, Contact, GeoPoint, RegistryEntry, ReportTo, RequestLine
from contracts.resource_types import CATALOGUE

FRESH_FOR = timedelta(days=30)
"""How long a verification holds in these tests (the default of `Settings.aid_verify_days`)."""
CONTACT = Contact(name="王强", phone="0516-83000000")
LINYI = GeoPoint(lat=35.1, lon=118.35)
XUZHOU = GeoPoint(lat=34.26, lon=117.18)


def entry(owner: str = "xuzhou", external_id: str = "pump-1", **overrides: Any) -> RegistryEntry:
    """Return a registry entry of drainage pumps (or what `overrides` say) owned by `owner`."""
    type_code = overrides.pop("type_code", "equipment.pump.drainage")
    row = CATALOGUE[type_code]
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "id": external_id,
        "owner_city": owner,
        "type_code": type_code,
        "kind": row.kind,
        "grade": 2 if row.graded else None,
        "name": row.name_zh,
        "quantity": Decimal(1) if row.bookable else Decimal(10),
        "unit": row.unit,
        "location": XUZHOU,
        "contact": CONTACT,
        "package": AidPackage(
            personnel=4, daily_rate=Decimal("1200.00"), self_sufficiency_hours=72, mobilise_minutes=90
        ),
        "verified_at": now - timedelta(days=1),
        "verified_by": "李明",
        "updated_at": now,
    }
    body.update(overrides)
    return RegistryEntry(**body)


def line(
    line_id: str = "L1", type_code: str = "equipment.pump.drainage", quantity: int = 50, **kw: Any
) -> RequestLine:
    """Return a request line needed tomorrow for two days at Linyi."""
    row = CATALOGUE[type_code]
    body: dict[str, Any] = {
        "line_id": line_id,
        "type_code": type_code,
        "quantity": Decimal(quantity),
        "unit": row.unit,
        "needed_by": datetime.now(UTC).replace(microsecond=0) + timedelta(days=1),
        "duration_hours": 48,
        "report_to": ReportTo(place="临沂市兰山区防汛指挥部", point=LINYI),
    }
    body.update(kw)
    return RequestLine(**body)
