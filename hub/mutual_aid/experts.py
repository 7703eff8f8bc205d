"""The registry's experts, as other capabilities ask for them (a consultation inviting specialists)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from contracts.mutual_aid import EntryStatus
from contracts.partner import ResourceKind
from contracts.resource_types import CATALOGUE
from hub.kernel.types import DbSession
from hub.mutual_aid.models import AidResource


@dataclass(frozen=True, slots=True)
class Expert:
    """An expert entry of a city's registry."""

    resource_id: uuid.UUID
    city_id: int
    speciality: str
    name: str
    contact_phone: str


def speciality_code(speciality: str) -> str | None:
    """Return the catalogue's expert type a speciality names (its code or its Chinese name), or None."""
    wanted = speciality.strip()
    for row in CATALOGUE.values():
        if row.kind is ResourceKind.EXPERT and wanted in (
            row.code,
            row.name_zh,
            row.name_zh.removesuffix("专家"),
        ):
            return row.code
    return None


def available(session: DbSession, specialities: Iterable[str], city_ids: Iterable[int]) -> list[Expert]:
    """Return the available experts of the given specialities held by the given cities.

    Experts out of service or assigned elsewhere are left out: they cannot come.
    """
    codes = sorted({code for s in specialities if (code := speciality_code(s)) is not None})
    cities = sorted(set(city_ids))
    if not codes or not cities:
        return []
    query = (
        select(AidResource)
        .where(
            AidResource.kind == ResourceKind.EXPERT.value,
            AidResource.type_code.in_(codes),
            AidResource.owner_city_id.in_(cities),
            AidResource.status == EntryStatus.AVAILABLE.value,
        )
        .order_by(AidResource.type_code, AidResource.owner_city_id, AidResource.id)
    )
    return [
        Expert(row.public_id, row.owner_city_id, row.type_code, row.name, row.contact_phone)
        for row in session.scalars(query)
    ]
