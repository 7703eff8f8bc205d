"""What the duty roster puts on every city's desk: who is on duty now, in each city."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub.duty import services
from hub.duty.models import DutyShift
from hub.kernel import cities
from hub.kernel.types import DbSession, utcnow

if TYPE_CHECKING:
    from hub.config import Settings


def context(session: DbSession, city_id: int, settings: Settings) -> dict[str, object]:
    """The shift on duty now in every city (by city id), which shift it is, and the cities."""
    now = utcnow()
    return {
        "on_duty": services.on_duty(session, now),
        "duty_shift": services.shift_at(now),
        "all_cities": cities.all_cities(session),
    }


def version(session: DbSession) -> dict[int | None, object]:
    """For every desk: the shift now, and the roster's size and last change."""
    count, last = session.execute(select(func.count(), func.max(DutyShift.updated_at))).one()
    return {None: (services.shift_at(utcnow()), count, last)}
