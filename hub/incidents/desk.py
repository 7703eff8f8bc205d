"""What the incidents capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hub.capabilities import RANK_LEVEL_I, RANK_LEVEL_II, DeskItem
from hub.incidents import notifications, services
from hub.incidents.models import Incident, Notification
from hub.kernel import acknowledgements, cities
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings

# Notices of incidents at this level (II, 重大) or more severe need the desk's action now.
URGENT_AT_LEVEL = 2


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Unread notices of level I and II incidents; those of exercises go to the exercise lane.

    A live one alerts until it is read (确认已阅 is its acknowledgement).
    """
    return [
        DeskItem(
            "incidents/_urgent.html",
            notice,
            key=notifications.notice_key(notice.id),
            exercise=notice.incident.exercise,
            alert=not notice.incident.exercise,
            rank=RANK_LEVEL_I if notice.incident.level == 1 else RANK_LEVEL_II,
        )
        for notice in notifications.for_city(session, city_id, limit=30)
        if notice.read_at is None and notice.incident.level <= URGENT_AT_LEVEL
    ]


def version(session: DbSession) -> dict[int | None, object]:
    """Per city: its notices (new or read); for every desk: the region's incidents."""
    notices = select(
        Notification.city_id, func.count(), func.max(Notification.id), func.count(Notification.read_at)
    ).group_by(Notification.city_id)
    found: dict[int | None, object] = {row[0]: tuple(row[1:]) for row in session.execute(notices)}
    found[None] = tuple(
        session.execute(select(func.count(), func.max(Incident.id), func.max(Incident.updated_at))).one()
    )
    return found


def context(session: DbSession, city_id: int, settings: Settings) -> dict[str, object]:
    """The city's notices, its open incidents and counts, and the region's open incidents."""
    city = cities.by_id(session, city_id)
    received = notifications.for_city(session, city_id, limit=30)
    return {
        "notifications": received,
        "unread": sum(1 for n in received if n.read_at is None),
        "notice_acks": acknowledgements.for_keys(
            session, city_id, (notifications.notice_key(n.id) for n in received if n.read_at is not None)
        ),
        "open_incidents": services.list_incidents(
            session, services.IncidentFilter(city=city.slug, open_only=True), per_page=20
        ).items,
        "counts": services.open_counts_by_level(session, city),
        "all_cities": cities.all_cities(session),
        "regional_incidents": services.list_incidents(
            session, services.IncidentFilter(open_only=True), per_page=100
        ).items,
    }
