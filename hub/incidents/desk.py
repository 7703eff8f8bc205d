"""What the incidents capability puts on a city's desk."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from contracts.common import IncidentStatus
from hub.capabilities import RANK_LEVEL_I, RANK_LEVEL_II, DeskItem
from hub.incidents import notifications, services
from hub.incidents.models import Incident, Notification
from hub.kernel import acknowledgements, cities
from hub.kernel.models import City, DeskAcknowledgement
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
    """Per city: its newest notice and how many are unread; for every desk: the incidents' newest.

    Only what a desk can change on is read, through indexes (the city's notices, the partial
    ones of unread notices and of open incidents): a new notice moves its city's newest id, a
    read one leaves the unread count, a changed incident moves the newest `updated_at`, a closed
    one leaves the open count.
    """
    newest = select(func.max(Notification.id)).where(Notification.city_id == City.id).scalar_subquery()
    unread = (
        select(func.count())
        .where(Notification.city_id == City.id, Notification.read_at.is_(None))
        .scalar_subquery()
    )
    found: dict[int | None, object] = {
        city_id: (last, n_unread)
        for city_id, last, n_unread in session.execute(select(City.id, newest, unread))
    }
    found[None] = (
        session.scalar(select(func.max(Incident.id))),
        session.scalar(select(func.max(Incident.updated_at))),
        session.scalar(select(func.count()).where(Incident.status != IncidentStatus.CLOSED)),
    )
    return found


def panel_token(session: DbSession, city_id: int) -> Hashable:
    """What the incidents panel of a city's desk shows, in a token (index lookups).

    The city's notices (the newest, how many, how many unread: a new, read or removed notice),
    the city's acknowledgements (who confirmed a notice), and the incidents' newest change and
    open count (every change of level, status, title or cities moves `updated_at`).
    """
    mine = Notification.city_id == city_id
    notices = session.execute(select(func.max(Notification.id), func.count()).where(mine)).one()
    unread = session.scalar(select(func.count()).where(mine, Notification.read_at.is_(None)))
    acks = session.execute(
        select(func.max(DeskAcknowledgement.id), func.count()).where(DeskAcknowledgement.city_id == city_id)
    ).one()
    incidents = session.execute(
        select(
            func.max(Incident.id),
            func.max(Incident.updated_at),
            select(func.count()).where(Incident.status != IncidentStatus.CLOSED).scalar_subquery(),
        )
    ).one()
    return (tuple(notices), unread, tuple(acks), tuple(incidents))


def context(session: DbSession, city_id: int, settings: Settings) -> dict[str, object]:
    """The city's notices, its open incidents and their counts per level."""
    city = cities.by_id(session, city_id)
    received = notifications.for_city(session, city_id, limit=30)
    return {
        "notifications": received,
        "unread": sum(1 for n in received if n.read_at is None),
        "notice_acks": acknowledgements.for_keys(
            session, city_id, (notifications.notice_key(n.id) for n in received if n.read_at is not None)
        ),
        "open_incidents": services.newest_incidents(
            session, services.IncidentFilter(city=city.slug, open_only=True), 20
        ),
        "counts": services.open_counts_by_level(session, city),
    }
