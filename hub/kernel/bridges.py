"""The city-edge brokers' bridges to the regional broker, as their notifications tell the hub.

Each edge broker publishes a retained "1" on `<root>/v1/<city>/bridge/state` when its bridge
connects and leaves a will of "0" that the regional broker publishes when the link drops
(`hub.runtime.edge_broker`). The hub's MQTT writer records the last word per city here, in its
batch's transaction, never from the network thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.kernel.models import BridgeState, City
from hub.kernel.types import DbSession


def record(session: DbSession, city_slug: str, connected: bool, at: datetime) -> str:
    """Store a bridge's state as heard at `at`; return what happened ("dead:…" when refused).

    A repeated state (the retained message again after the hub reconnects) only moves
    `seen_at`; `changed_at` stays the time the bridge went up or down.
    """
    city_id = session.scalar(select(City.id).where(City.slug == city_slug))
    if city_id is None:
        return "dead:bridge state of an unknown city"
    row = session.get(BridgeState, city_id)
    if row is None:
        # Every hub process hears the same retained notification: two may add the first row at
        # once. The loser's savepoint is rolled back and it updates the winner's row instead.
        try:
            with session.begin_nested():
                session.add(BridgeState(city_id=city_id, connected=connected, changed_at=at, seen_at=at))
            return _outcome(connected)
        except IntegrityError:
            row = session.get(BridgeState, city_id, populate_existing=True)
            if row is None:
                raise
    if row.connected != connected:
        row.connected, row.changed_at = connected, at
    row.seen_at = at
    session.flush()
    return _outcome(connected)


def _outcome(connected: bool) -> str:
    return "bridge_up" if connected else "bridge_down"


@dataclass(frozen=True)
class BridgeStatus:
    """One city's bridge as the status page shows it."""

    city: str
    city_name: str
    connected: bool
    changed_at: datetime
    seen_at: datetime


def states(session: DbSession) -> list[BridgeStatus]:
    """Return every bridge the hub has heard of, the ones down first, then by city."""
    rows = session.execute(
        select(BridgeState, City.slug, City.name_zh).join(City, City.id == BridgeState.city_id)
    ).all()
    found = [BridgeStatus(slug, name, row.connected, row.changed_at, row.seen_at) for row, slug, name in rows]
    return sorted(found, key=lambda b: (b.connected, b.city))
