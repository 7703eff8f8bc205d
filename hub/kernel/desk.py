"""A city's desk: what it owes now, what it waits on, and the capabilities' panels.

The rules of what is urgent belong to each capability (its `urgent` and `waiting` declarations);
this only gathers them, so that the desk page and any API that shows the desk cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.capabilities import DeskItem, all_capabilities
from hub.config import Settings
from hub.kernel.types import DbSession

_NO_DEADLINE = datetime.max.replace(tzinfo=UTC)


@dataclass
class Desk:
    """What one city's desk shows."""

    urgent: list[DeskItem] = field(default_factory=list)
    waiting: list[DeskItem] = field(default_factory=list)
    panels: list[str] = field(default_factory=list)
    context: dict[str, object] = field(default_factory=dict)


def for_city(session: DbSession, city_id: int, settings: Settings) -> Desk:
    """Gather every capability's desk items for the city; urgent ones soonest due first."""
    desk = Desk()
    for capability in all_capabilities():
        if capability.urgent is not None:
            desk.urgent += capability.urgent(session, city_id, settings)
        if capability.waiting is not None:
            desk.waiting += capability.waiting(session, city_id, settings)
        if capability.desk_context is not None:
            desk.context.update(capability.desk_context(session, city_id, settings))
        desk.panels += capability.desk_panels
    desk.urgent.sort(key=lambda item: item.due_at or _NO_DEADLINE)
    return desk
