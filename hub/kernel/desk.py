"""A city's desk: what it owes now, what it waits on, and the capabilities' panels.

The rules of what is urgent belong to each capability (its `urgent` and `waiting` declarations);
this only gathers them, so that the desk page and any API that shows the desk cannot disagree.
Exercise items (drills) go to their own lane and never to the live urgent list. An urgent item
that alerts stays marked until a person of the city acknowledges it (`hub.kernel.acknowledgements`).

The change detector asks `probe` often (index lookups: the newest audit entry and reminder, and
what capabilities add) and `versions` (a token per city, from grouped queries) when the probe
moved, or every few seconds for what time alone changes (a receipt falling late, a new day).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select

from hub.capabilities import DeskItem, all_capabilities
from hub.config import Settings
from hub.kernel import acknowledgements
from hub.kernel.models import AuditEntry, City, DeskAcknowledgement, Reminder
from hub.kernel.types import DbSession

_NO_DEADLINE = datetime.max.replace(tzinfo=UTC)


@dataclass
class PanelGroup:
    """One capability's panels on a desk, and the token a render of them may be kept by."""

    capability: str
    templates: tuple[str, ...]
    token: Hashable | None = None  # None: the capability keeps no token; render them each time
    kept: bool = False  # the caller holds a render at this token: the context was not gathered


@dataclass
class Desk:
    """What one city's desk shows."""

    urgent: list[DeskItem] = field(default_factory=list)
    waiting: list[DeskItem] = field(default_factory=list)
    exercise: list[DeskItem] = field(default_factory=list)  # the drills' lane (演练)
    panels: list[PanelGroup] = field(default_factory=list)
    context: dict[str, object] = field(default_factory=dict)
    acknowledged: dict[str, DeskAcknowledgement] = field(default_factory=dict)  # by item key

    @property
    def alerting(self) -> list[DeskItem]:
        """Live urgent items that sound until a person acknowledges them."""
        return [i for i in self.urgent if i.alert and i.key and i.key not in self.acknowledged]


def for_city(
    session: DbSession,
    city_id: int,
    settings: Settings,
    *,
    kept: Callable[[str, Hashable], bool] | None = None,
) -> Desk:
    """Gather every capability's desk items for the city; urgent ones soonest due first.

    With `kept` (capability name, panel token -> whether the caller holds a render of that
    capability's panels at that token), the context of the panels the caller holds is not
    gathered: the caller reuses its render.
    """
    desk = Desk()
    for capability in all_capabilities():
        if capability.urgent is not None:
            for item in capability.urgent(session, city_id, settings):
                (desk.exercise if item.exercise else desk.urgent).append(item)
        if capability.waiting is not None:
            desk.waiting += capability.waiting(session, city_id, settings)
        token = None
        if kept is not None and capability.desk_panel_token is not None:
            token = capability.desk_panel_token(session, city_id)
        reused = token is not None and kept is not None and kept(capability.name, token)
        if capability.desk_context is not None and not reused:
            desk.context.update(capability.desk_context(session, city_id, settings))
        if capability.desk_panels:
            desk.panels.append(PanelGroup(capability.name, capability.desk_panels, token, reused))
    desk.urgent.sort(key=lambda item: (item.rank, item.due_at or _NO_DEADLINE))
    keys = [item.key for item in desk.urgent + desk.exercise if item.key]
    desk.acknowledged = acknowledgements.for_keys(session, city_id, keys)
    return desk


def versions(session: DbSession) -> dict[int, Hashable]:
    """Return a token per city that changes whenever something on that city's desk changes.

    Each capability answers for all cities at once (`desk_version`), so this costs a handful of
    grouped queries however many desks are open; the key None is part of every city's token.
    """
    city_ids = list(session.scalars(select(City.id)))
    parts: dict[int | None, list[object]] = {city_id: [] for city_id in city_ids}
    parts[None] = []
    acks = select(DeskAcknowledgement.city_id, func.count(), func.max(DeskAcknowledgement.id)).group_by(
        DeskAcknowledgement.city_id
    )
    tokens: list[tuple[int | None, object]] = [
        (city_id, ("ack", n, last)) for city_id, n, last in session.execute(acks)
    ]
    for capability in all_capabilities():
        if capability.desk_version is not None:
            tokens += [
                (key, (capability.name, value)) for key, value in capability.desk_version(session).items()
            ]
    for key, value in tokens:
        parts.setdefault(key, []).append(value)
    shared = tuple(parts.pop(None))
    return {
        city_id: hash((shared, tuple(values))) for city_id, values in parts.items() if city_id is not None
    }


def probe(session: DbSession) -> Hashable:
    """Return a token for the whole region that moves with every audited change, cheaply.

    Services write an audit entry with each change a person or a flow makes, so the newest entry
    names every such change; reminders, acknowledgements and the capabilities' own probes cover
    the rest.
    """
    parts: list[object] = [
        session.scalar(select(func.max(AuditEntry.id))),
        session.scalar(select(func.max(Reminder.id))),
        session.scalar(select(func.max(DeskAcknowledgement.id))),
    ]
    parts += [c.desk_probe(session) for c in all_capabilities() if c.desk_probe is not None]
    return tuple(parts)
