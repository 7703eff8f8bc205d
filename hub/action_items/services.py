"""Action items in the database: open, progress, close with evidence, reopen, remind once per slot.

The rules live in `hub.action_items.rules`; these functions load a row into the rules' record,
apply the rule, store the new state and the history event, and write the audit entry. Meetings'
resolutions and drills' corrective actions both open items here, naming their `origin`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from contracts.consultations import ActionItem as ActionItemContract
from contracts.consultations import (
    ActionItemClose,
    ActionItemCreate,
    ActionItemProgress,
    ActionItemReopen,
    ActionItemState,
    Evidence,
)
from hub.action_items import rules
from hub.action_items.models import ActionItem, ActionItemEvent, ActionItemReminder
from hub.kernel import audit, cities, flow_requests
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden, InvalidInput, NotFound
from hub.kernel.types import DbSession, utcnow

if TYPE_CHECKING:
    from hub.config import Settings

REMIND = "remind-action-item"


def _require_writer(actor: Actor) -> int:
    if not actor.can_write_incidents or actor.city_id is None:
        raise Forbidden("only coordinators and duty officers of a city change action items")
    return actor.city_id


def to_record(item: ActionItem) -> rules.ActionItemRecord:
    """Return the row as the rules see it."""
    history = tuple(
        rules.ActionItemEvent(
            kind=rules.EventKind(event.kind),
            at=event.at,
            city=event.city.slug,
            note=event.note,
            evidence=Evidence.model_validate(event.evidence) if event.evidence else None,
            due_on=event.due_on,
        )
        for event in item.events
    )
    return rules.ActionItemRecord(
        id=str(item.public_id),
        owner_city=item.owner_city.slug,
        chair_city=item.chair_city.slug,
        due_on=item.due_on,
        opened_at=item.opened_at,
        state=ActionItemState(item.state),
        closed_at=item.closed_at,
        evidence=Evidence.model_validate(item.evidence) if item.evidence else None,
        history=history,
    )


def _store(session: DbSession, actor: Actor, item: ActionItem, record: rules.ActionItemRecord) -> None:
    """Write the record's state onto the row and append its newest event."""
    before = _snapshot(item)
    event = record.history[-1]
    item.state = record.state.value
    item.due_on = record.due_on
    item.closed_at = record.closed_at
    item.evidence = record.evidence.model_dump(mode="json") if record.evidence else None
    item.sequence += 1
    item.updated_at = event.at
    session.add(
        ActionItemEvent(
            action_item=item,
            kind=event.kind.value,
            at=event.at,
            city_id=cities.by_slug(session, event.city).id,
            actor=actor.name,
            note=event.note,
            evidence=event.evidence.model_dump(mode="json") if event.evidence else None,
            due_on=event.due_on,
        )
    )
    session.flush()
    audit.record(
        session,
        actor,
        f"action_item.{event.kind.value}",
        "action_item",
        item.id,
        before=before,
        after=_snapshot(item),
        city_id=item.owner_city_id,
    )


def _snapshot(item: ActionItem) -> dict[str, object]:
    return {
        "title": item.title,
        "owner_city": item.owner_city.slug if item.owner_city else None,
        "due_on": item.due_on.isoformat(),
        "state": item.state,
        "evidence": item.evidence,
    }


def open_items(
    session: DbSession,
    actor: Actor,
    items: Iterable[ActionItemCreate],
    *,
    origin: str,
    origin_id: int,
    context_id: uuid.UUID | None,
    chair_city_id: int,
    now: datetime | None = None,
) -> list[ActionItem]:
    """Open one item per entry, owned by its city and followed up by the chair city."""
    now = now or utcnow()
    chair = cities.by_id(session, chair_city_id)
    opened = []
    for data in items:
        owner = cities.by_slug(session, data.owner_city)
        public_id = uuid.uuid4()
        record = rules.open_item(
            str(public_id), owner_city=owner.slug, chair_city=chair.slug, due_on=data.due_on, now=now
        )
        item = ActionItem(
            public_id=public_id,
            origin=origin,
            origin_id=origin_id,
            context_id=context_id,
            owner_city=owner,
            chair_city=chair,
            title=data.title,
            detail=data.detail,
            due_on=record.due_on,
            state=record.state.value,
            opened_at=now,
            carried_over=0,
            sequence=0,
            updated_at=now,
        )
        session.add(item)
        session.add(
            ActionItemEvent(
                action_item=item,
                kind=rules.EventKind.OPENED.value,
                at=now,
                city_id=chair.id,
                actor=actor.name,
                note="",
                due_on=data.due_on,
            )
        )
        session.flush()
        audit.record(
            session,
            actor,
            "action_item.opened",
            "action_item",
            item.id,
            after={**_snapshot(item), "origin": origin, "origin_id": origin_id},
            city_id=owner.id,
        )
        opened.append(item)
    return opened


def get(session: DbSession, public_id: uuid.UUID) -> ActionItem:
    """Return an action item by its public id, or fail."""
    item = session.scalar(
        select(ActionItem).where(ActionItem.public_id == public_id).options(selectinload(ActionItem.events))
    )
    if item is None:
        raise NotFound(f"no action item {public_id}")
    return item


def get_by_id(session: DbSession, item_id: int) -> ActionItem:
    """Return an action item by the hub's id (for flows), or fail."""
    item = session.get(ActionItem, item_id)
    if item is None:
        raise NotFound(f"no action item {item_id}")
    return item


def add_progress(
    session: DbSession, actor: Actor, public_id: uuid.UUID, data: ActionItemProgress
) -> ActionItem:
    """Add the owner city's progress note."""
    city_id = _require_writer(actor)
    item = get(session, public_id)
    record = rules.add_progress(
        to_record(item), by_city=cities.by_id(session, city_id).slug, note=data.note, now=utcnow()
    )
    _store(session, actor, item, record)
    return item


def close(session: DbSession, actor: Actor, public_id: uuid.UUID, data: ActionItemClose) -> ActionItem:
    """Close the item on its owner city's word, with evidence."""
    city_id = _require_writer(actor)
    item = get(session, public_id)
    record = rules.close(
        to_record(item), by_city=cities.by_id(session, city_id).slug, evidence=data.evidence, now=utcnow()
    )
    _store(session, actor, item, record)
    return item


def reopen(session: DbSession, actor: Actor, public_id: uuid.UUID, data: ActionItemReopen) -> ActionItem:
    """Reopen a closed item on the chair city's word."""
    city_id = _require_writer(actor)
    item = get(session, public_id)
    record = rules.reopen(
        to_record(item),
        by_city=cities.by_id(session, city_id).slug,
        reason=data.reason,
        now=utcnow(),
        due_on=data.due_on,
    )
    _store(session, actor, item, record)
    return item


def for_context(session: DbSession, context_id: uuid.UUID) -> list[ActionItem]:
    """Return the items a meeting or drill opened, in opening order."""
    query = select(ActionItem).where(ActionItem.context_id == context_id).order_by(ActionItem.id)
    return list(session.scalars(query))


def open_for_chair(session: DbSession, chair_city_id: int, *, origin: str) -> list[ActionItem]:
    """Return the open items a chair city follows up, for carrying over to its next meeting."""
    query = (
        select(ActionItem)
        .where(
            ActionItem.chair_city_id == chair_city_id,
            ActionItem.origin == origin,
            ActionItem.state != ActionItemState.CLOSED.value,
        )
        .order_by(ActionItem.due_on, ActionItem.id)
        .options(selectinload(ActionItem.events))
    )
    return list(session.scalars(query))


def open_items_of(session: DbSession, *, origin: str) -> list[ActionItem]:
    """Return every open item of an origin, soonest due first."""
    query = (
        select(ActionItem)
        .where(ActionItem.origin == origin, ActionItem.state != ActionItemState.CLOSED.value)
        .order_by(ActionItem.due_on, ActionItem.id)
        .options(selectinload(ActionItem.events))
    )
    return list(session.scalars(query))


def owned_by(session: DbSession, city_id: int, *, open_only: bool = True) -> list[ActionItem]:
    """Return a city's items, soonest due first."""
    query = select(ActionItem).where(ActionItem.owner_city_id == city_id)
    if open_only:
        query = query.where(ActionItem.state != ActionItemState.CLOSED.value)
    return list(session.scalars(query.order_by(ActionItem.due_on, ActionItem.id)))


def overdue_for(session: DbSession, city_id: int, now: datetime | None = None) -> list[ActionItem]:
    """Return the city's open items past their due day (Asia/Shanghai), the oldest first."""
    today = rules.local_day(now or utcnow())
    return [item for item in owned_by(session, city_id) if item.due_on < today]


def days_overdue(item: ActionItem, now: datetime | None = None) -> int:
    """Return how many days the item is past its due day."""
    return rules.days_overdue(to_record(item), now or utcnow())


def is_overdue(item: ActionItem, now: datetime | None = None) -> bool:
    """Whether the item is open after its due day has ended."""
    return rules.is_overdue(to_record(item), now or utcnow())


def schedule_reminders(session: DbSession, now: datetime, settings: Settings) -> None:
    """Ask for each reminder slot that is due, keyed by the slot, so it is sent once."""
    query = (
        select(ActionItem)
        .where(ActionItem.state != ActionItemState.CLOSED.value)
        .options(selectinload(ActionItem.events))
    )
    for item in session.scalars(query):
        for slot in rules.due_reminders(to_record(item), now):
            flow_requests.enqueue(
                session,
                REMIND,
                key=slot.key,
                parameters={
                    "action_item_id": item.id,
                    "key": slot.key,
                    "kind": slot.kind.value,
                    "days": slot.days,
                    "notify_chair": slot.notify_chair,
                },
            )


def record_reminder(
    session: DbSession, action_item_id: int, *, key: str, kind: str, days: int, notify_chair: bool
) -> bool:
    """Record the reminder of one slot unless it was already sent; return whether it is new."""
    if session.scalar(select(ActionItemReminder.id).where(ActionItemReminder.key == key)) is not None:
        return False
    item = get_by_id(session, action_item_id)
    if item.state == ActionItemState.CLOSED.value:
        return False
    reminder = ActionItemReminder(
        action_item_id=item.id, key=key, kind=kind, days=days, notify_chair=notify_chair, sent_at=utcnow()
    )
    try:
        with session.begin_nested():
            session.add(reminder)
    except IntegrityError:
        return False
    audit.record(
        session,
        Actor.system("action-item-reminders"),
        "action_item.reminded",
        "action_item",
        item.id,
        after={"key": key, "kind": kind, "days": days, "notify_chair": notify_chair},
        city_id=item.owner_city_id,
    )
    return True


def reminders_of(session: DbSession, action_item_id: int) -> list[ActionItemReminder]:
    """Return the reminders sent for an item, oldest first."""
    query = select(ActionItemReminder).where(ActionItemReminder.action_item_id == action_item_id)
    return list(session.scalars(query.order_by(ActionItemReminder.id)))


def to_contract(item: ActionItem) -> ActionItemContract:
    """Return the item as it crosses the boundary."""
    return ActionItemContract(
        id=item.public_id,
        owner_city=item.owner_city.slug,
        title=item.title,
        detail=item.detail,
        due_on=item.due_on,
        state=ActionItemState(item.state),
        opened_at=item.opened_at,
        closed_at=item.closed_at,
        evidence=Evidence.model_validate(item.evidence) if item.evidence else None,
        carried_over=item.carried_over,
    )


def overdue_since(item: ActionItem) -> datetime:
    """Return when the item became overdue: the midnight after its due day, in Shanghai."""
    return rules.overdue_from(item.due_on)


def overdue_chaired_by(session: DbSession, city_id: int, now: datetime | None = None) -> list[ActionItem]:
    """Return the open items past their due day that a city follows up as the chair."""
    today = rules.local_day(now or utcnow())
    query = select(ActionItem).where(
        ActionItem.chair_city_id == city_id,
        ActionItem.state != ActionItemState.CLOSED.value,
        ActionItem.due_on < today,
    )
    return list(session.scalars(query.order_by(ActionItem.due_on, ActionItem.id)))


def all_of(session: DbSession, *, origin: str) -> list[ActionItem]:
    """Return every item of an origin, open or closed, in opening order."""
    return list(
        session.scalars(select(ActionItem).where(ActionItem.origin == origin).order_by(ActionItem.id))
    )


# What an item's list shows: "open" (not closed), "overdue" (open past its due day), "closed".
LIST_STATES = ("open", "overdue", "closed")


def listing(
    session: DbSession,
    *,
    owner_city_id: int | None = None,
    chair_city_id: int | None = None,
    state: str | None = None,
    now: datetime | None = None,
    limit: int = 500,
) -> list[ActionItem]:
    """Return items by owner city, chair city and state, soonest due first (overdue ones lead)."""
    query = select(ActionItem)
    if owner_city_id is not None:
        query = query.where(ActionItem.owner_city_id == owner_city_id)
    if chair_city_id is not None:
        query = query.where(ActionItem.chair_city_id == chair_city_id)
    if state == "closed":
        query = query.where(ActionItem.state == ActionItemState.CLOSED.value)
    elif state in ("open", "overdue"):
        query = query.where(ActionItem.state != ActionItemState.CLOSED.value)
        if state == "overdue":
            query = query.where(ActionItem.due_on < rules.local_day(now or utcnow()))
    elif state is not None:
        raise InvalidInput(f"state is one of {', '.join(LIST_STATES)}", reason="bad_state")
    query = query.order_by(ActionItem.due_on, ActionItem.id).limit(limit)
    return list(session.scalars(query.options(selectinload(ActionItem.events))))
