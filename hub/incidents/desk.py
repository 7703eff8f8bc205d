"""What the incidents capability puts on a city's desk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.capabilities import DeskItem
from hub.incidents import notifications, services
from hub.kernel import cities
from hub.kernel.types import DbSession

if TYPE_CHECKING:
    from hub.config import Settings

# Notices of incidents at this level (II, 重大) or more severe need the desk's action now.
URGENT_AT_LEVEL = 2


def urgent(session: DbSession, city_id: int, settings: Settings) -> list[DeskItem]:
    """Unread notices of level I and II incidents."""
    return [
        DeskItem("incidents/_urgent.html", notice)
        for notice in notifications.for_city(session, city_id, limit=30)
        if notice.read_at is None and notice.incident.level <= URGENT_AT_LEVEL
    ]


def context(session: DbSession, city_id: int, settings: Settings) -> dict[str, object]:
    """The city's notices, its open incidents and counts, and the region's open incidents."""
    city = cities.by_id(session, city_id)
    received = notifications.for_city(session, city_id, limit=30)
    return {
        "notifications": received,
        "unread": sum(1 for n in received if n.read_at is None),
        "open_incidents": services.list_incidents(
            session, services.IncidentFilter(city=city.slug, open_only=True), per_page=20
        ).items,
        "counts": services.open_counts_by_level(session, city),
        "all_cities": cities.all_cities(session),
        "regional_incidents": services.list_incidents(
            session, services.IncidentFilter(open_only=True), per_page=100
        ).items,
    }
