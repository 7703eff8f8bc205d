"""The action-item engine: states, who may change what, the reminder plan and carry-over counts.

Pure functions over immutable records; no database, no clock. Conference resolutions and drills'
corrective actions both use it, so an item behaves the same wherever it was opened.

States: open -> closed (by the owner city, with evidence) -> reopened (by the chair) -> closed ...
"Overdue" is not a state that a timer has to set: it is the due date read against `now`, so a hub
that was down at midnight still shows the truth when it comes back.

Every change returns a new record whose `history` has one more event; the database layer stores
the events append-only and writes each to the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from contracts.consultations import ActionItemState, Evidence
from hub.kernel.errors import Conflict, Forbidden, InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")


class EventKind(StrEnum):
    """What happened to an action item."""

    OPENED = "opened"
    PROGRESS = "progress"
    CLOSED = "closed"
    REOPENED = "reopened"


@dataclass(frozen=True, slots=True)
class ActionItemEvent:
    """One entry of an item's history: what, when, by which city, and its note or evidence."""

    kind: EventKind
    at: datetime
    city: str
    note: str = ""
    evidence: Evidence | None = None
    due_on: date | None = None


@dataclass(frozen=True, slots=True)
class ActionItemRecord:
    """An action item as the engine sees it; `id` is its public id, used in reminder keys."""

    id: str
    owner_city: str
    chair_city: str
    due_on: date
    opened_at: datetime
    state: ActionItemState = ActionItemState.OPEN
    closed_at: datetime | None = None
    evidence: Evidence | None = None
    history: tuple[ActionItemEvent, ...] = field(default=())

    @property
    def is_open(self) -> bool:
        """Whether the owner city still has to act."""
        return self.state.is_open

    @property
    def active_since(self) -> datetime:
        """Return when the item last became open: its opening or its latest reopening."""
        reopened = [event.at for event in self.history if event.kind is EventKind.REOPENED]
        return reopened[-1] if reopened else self.opened_at


def _aware(moment: datetime, name: str = "now") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


def local_day(moment: datetime) -> date:
    """Return the calendar day in Asia/Shanghai of an aware instant."""
    return _aware(moment).astimezone(SHANGHAI).date()


def overdue_from(due_on: date) -> datetime:
    """Return the instant an item due on `due_on` becomes overdue: the next midnight in Shanghai."""
    return datetime.combine(due_on + timedelta(days=1), time(0, 0), tzinfo=SHANGHAI)


def open_item(
    item_id: str, *, owner_city: str, chair_city: str, due_on: date, now: datetime
) -> ActionItemRecord:
    """Open an action item for one owner city, due on a day that is not already past."""
    if due_on < local_day(now):
        raise InvalidInput(f"the due date {due_on.isoformat()} is already past")
    return ActionItemRecord(
        id=item_id,
        owner_city=owner_city,
        chair_city=chair_city,
        due_on=due_on,
        opened_at=now,
        history=(ActionItemEvent(EventKind.OPENED, now, chair_city, due_on=due_on),),
    )


def _only_owner(item: ActionItemRecord, city: str, doing: str) -> None:
    if city != item.owner_city:
        raise Forbidden(f"only the owner city ({item.owner_city}) may {doing} this action item")


def add_progress(item: ActionItemRecord, *, by_city: str, note: str, now: datetime) -> ActionItemRecord:
    """Add the owner city's progress note to an open item."""
    _only_owner(item, by_city, "update")
    if not item.is_open:
        raise Conflict("the action item is closed; the chair reopens it before it changes again")
    if not note.strip():
        raise InvalidInput("a progress note says what was done")
    event = ActionItemEvent(EventKind.PROGRESS, _aware(now), by_city, note=note.strip())
    return replace(item, history=(*item.history, event))


def close(
    item: ActionItemRecord, *, by_city: str, evidence: Evidence | None, now: datetime
) -> ActionItemRecord:
    """Close an item on the owner city's word, which must come with evidence."""
    _only_owner(item, by_city, "close")
    if not item.is_open:
        raise Conflict("the action item is already closed")
    if evidence is None or not evidence.note.strip():
        raise InvalidInput("closing an action item needs evidence: a note, and a document where there is one")
    event = ActionItemEvent(EventKind.CLOSED, _aware(now), by_city, note=evidence.note, evidence=evidence)
    return replace(
        item,
        state=ActionItemState.CLOSED,
        closed_at=now,
        evidence=evidence,
        history=(*item.history, event),
    )


def reopen(
    item: ActionItemRecord, *, by_city: str, reason: str, now: datetime, due_on: date | None = None
) -> ActionItemRecord:
    """Reopen a closed item on the chair's word, with a reason and optionally a new due date."""
    if by_city != item.chair_city:
        raise Forbidden(f"only the chair ({item.chair_city}) may reopen this action item")
    if item.is_open:
        raise Conflict("the action item is not closed")
    if not reason.strip():
        raise InvalidInput("reopening an action item gives the reason")
    if due_on is not None and due_on < local_day(now):
        raise InvalidInput(f"the new due date {due_on.isoformat()} is already past")
    event = ActionItemEvent(EventKind.REOPENED, _aware(now), by_city, note=reason.strip(), due_on=due_on)
    return replace(
        item,
        state=ActionItemState.REOPENED,
        closed_at=None,
        evidence=None,
        due_on=due_on or item.due_on,
        history=(*item.history, event),
    )


def is_overdue(item: ActionItemRecord, now: datetime) -> bool:
    """Whether the item is still open after its due day has ended in Shanghai."""
    return item.is_open and _aware(now) >= overdue_from(item.due_on)


def days_overdue(item: ActionItemRecord, now: datetime) -> int:
    """Return how many days the item is past its due day (0 when not overdue)."""
    return max(0, (local_day(now) - item.due_on).days) if item.is_open else 0


def closed_on_time(item: ActionItemRecord) -> bool | None:
    """Whether a closed item was closed by its due day; None while it is open."""
    if item.closed_at is None or item.is_open:
        return None
    return local_day(item.closed_at) <= item.due_on


def was_open_at(item: ActionItemRecord, moment: datetime) -> bool:
    """Whether the item was open at `moment`, replaying its history (the future is its present)."""
    _aware(moment, "moment")
    if moment < item.opened_at:
        return False
    state_open = True
    for event in item.history:
        if event.at > moment:
            break
        if event.kind is EventKind.CLOSED:
            state_open = False
        elif event.kind is EventKind.REOPENED:
            state_open = True
    return state_open


# Reminders ----------------------------------------------------------------------------------------


class ReminderKind(StrEnum):
    """A reminder before the due day, or one for a day the item is overdue."""

    BEFORE = "before"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    """When to remind: `before_days` ahead of the due day, then daily once overdue, at `at` local time."""

    before_days: tuple[int, ...] = (3, 1)
    at: time = time(9, 0)
    overdue_daily: bool = True


DEFAULT_PLAN = ReminderPlan()


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder slot; `key` names it, so a caller that enqueues by key sends it once."""

    key: str
    kind: ReminderKind
    fire_at: datetime
    days: int  # days left before the due day, or days overdue
    notify_chair: bool


def _slot_time(day: date, plan: ReminderPlan) -> datetime:
    return datetime.combine(day, plan.at, tzinfo=SHANGHAI)


def reminder_slots(
    item: ActionItemRecord, through: date, plan: ReminderPlan = DEFAULT_PLAN
) -> list[Reminder]:
    """List every slot of the plan for the item's current due day, up to the day `through`, in time order.

    Each key names the day the slot fires, so a new due date (after a reopening) makes new keys
    while the same due date always makes the same ones.
    """
    slots = []
    for n in sorted(set(plan.before_days), reverse=True):
        day = item.due_on - timedelta(days=n)
        if day <= through:
            slots.append(
                Reminder(
                    key=f"action-item:{item.id}:before-{n}d-{day.isoformat()}",
                    kind=ReminderKind.BEFORE,
                    fire_at=_slot_time(day, plan),
                    days=n,
                    notify_chair=False,
                )
            )
    if plan.overdue_daily:
        day = item.due_on + timedelta(days=1)
        while day <= through:
            slots.append(
                Reminder(
                    key=f"action-item:{item.id}:overdue-{day.isoformat()}",
                    kind=ReminderKind.OVERDUE,
                    fire_at=_slot_time(day, plan),
                    days=(day - item.due_on).days,
                    # An overdue item goes to the chair as well as to the owner city.
                    notify_chair=True,
                )
            )
            day += timedelta(days=1)
    return sorted(slots, key=lambda slot: slot.fire_at)


def due_reminders(
    item: ActionItemRecord, now: datetime, plan: ReminderPlan = DEFAULT_PLAN
) -> tuple[Reminder, ...]:
    """Return the reminder slot that is due at `now`, if any (at most one).

    A slot is due once its time has come, until the next slot's time comes; a slot that was
    missed (the hub was down) is superseded rather than sent late, because "three days left"
    said when one day is left is wrong. Slots from before the item was (re)opened are not due:
    the owner city was just told. A closed item has none.
    """
    if not item.is_open:
        return ()
    passed = [
        slot
        for slot in reminder_slots(item, local_day(now), plan)
        if slot.fire_at <= now and slot.fire_at >= item.active_since
    ]
    return (passed[-1],) if passed else ()


def next_reminder_at(
    item: ActionItemRecord, now: datetime, plan: ReminderPlan = DEFAULT_PLAN
) -> datetime | None:
    """Return when the next slot fires after `now`, for the caller's timer; None when closed."""
    if not item.is_open:
        return None
    horizon = max(local_day(now), item.due_on) + timedelta(days=2)
    upcoming = [slot.fire_at for slot in reminder_slots(item, horizon, plan) if slot.fire_at > now]
    return upcoming[0] if upcoming else None


# Carry-over ---------------------------------------------------------------------------------------


def carried_over_count(item: ActionItemRecord, meeting_starts: Iterable[datetime]) -> int:
    """Count the meetings, held after the item was opened, at whose start it was still open.

    Pass the upcoming meeting too, to label its agenda: "carried over (n times)".
    """
    return sum(1 for start in set(meeting_starts) if start > item.opened_at and was_open_at(item, start))


@dataclass(frozen=True, slots=True)
class CarryOver:
    """An open item that goes onto the next meeting's agenda, and how often it has."""

    item: ActionItemRecord
    times: int


def carry_overs(
    items: Iterable[ActionItemRecord], upcoming_start: datetime, held_starts: Iterable[datetime] = ()
) -> list[CarryOver]:
    """List the items still open for the upcoming meeting's agenda, the most carried first."""
    starts = [*held_starts, upcoming_start]
    chosen = [
        CarryOver(item, carried_over_count(item, starts))
        for item in items
        if item.is_open and item.opened_at < upcoming_start
    ]
    return sorted(chosen, key=lambda c: (-c.times, c.item.due_on, c.item.id))
