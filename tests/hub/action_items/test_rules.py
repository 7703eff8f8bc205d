"""The action-item engine: who may do what, the reminder slots, carry-over counts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from contracts.consultations import ActionItemState, Evidence
from hub.action_items.rules import (
    ActionItemRecord,
    EventKind,
    ReminderKind,
    ReminderPlan,
    add_progress,
    carried_over_count,
    carry_overs,
    close,
    closed_on_time,
    days_overdue,
    due_reminders,
    is_overdue,
    next_reminder_at,
    open_item,
    overdue_from,
    reminder_slots,
    reopen,
    was_open_at,
)
from hub.kernel.errors import Conflict, Forbidden, InvalidInput

SH = ZoneInfo("Asia/Shanghai")
DUE = date(2026, 12, 2)
EVIDENCE = Evidence(note="巡查完成", documents=("attachment:1",))


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SH)


@pytest.fixture
def item() -> ActionItemRecord:
    return open_item("a1", owner_city="linyi", chair_city="xuzhou", due_on=DUE, now=at(date(2026, 11, 1)))


def test_opening_records_the_first_event_and_refuses_a_past_due_date(item: ActionItemRecord) -> None:
    assert item.state is ActionItemState.OPEN
    assert [e.kind for e in item.history] == [EventKind.OPENED]
    with pytest.raises(InvalidInput, match="already past"):
        open_item("a2", owner_city="linyi", chair_city="xuzhou", due_on=DUE, now=at(date(2026, 12, 3)))


def test_only_the_owner_city_updates_and_closes(item: ActionItemRecord) -> None:
    with pytest.raises(Forbidden, match="only the owner city"):
        add_progress(item, by_city="xuzhou", note="x", now=at(date(2026, 11, 2)))
    with pytest.raises(Forbidden, match="only the owner city"):
        close(item, by_city="heze", evidence=EVIDENCE, now=at(date(2026, 11, 2)))
    updated = add_progress(item, by_city="linyi", note=" 已巡查 12 公里 ", now=at(date(2026, 11, 2)))
    assert updated.history[-1].note == "已巡查 12 公里"
    assert updated.state is ActionItemState.OPEN


def test_closing_needs_evidence(item: ActionItemRecord) -> None:
    with pytest.raises(InvalidInput, match="needs evidence"):
        close(item, by_city="linyi", evidence=None, now=at(date(2026, 11, 2)))
    closed = close(item, by_city="linyi", evidence=EVIDENCE, now=at(date(2026, 11, 2)))
    assert closed.state is ActionItemState.CLOSED
    assert closed.evidence == EVIDENCE
    assert closed.history[-1].kind is EventKind.CLOSED
    with pytest.raises(Conflict, match="already closed"):
        close(closed, by_city="linyi", evidence=EVIDENCE, now=at(date(2026, 11, 3)))
    with pytest.raises(Conflict, match="chair reopens it"):
        add_progress(closed, by_city="linyi", note="more", now=at(date(2026, 11, 3)))


def test_only_the_chair_reopens_a_closed_item_with_a_reason(item: ActionItemRecord) -> None:
    with pytest.raises(Conflict, match="not closed"):
        reopen(item, by_city="xuzhou", reason="x", now=at(date(2026, 11, 2)))
    closed = close(item, by_city="linyi", evidence=EVIDENCE, now=at(date(2026, 11, 2)))
    with pytest.raises(Forbidden, match="only the chair"):
        reopen(closed, by_city="linyi", reason="x", now=at(date(2026, 11, 3)))
    with pytest.raises(InvalidInput, match="reason"):
        reopen(closed, by_city="xuzhou", reason="  ", now=at(date(2026, 11, 3)))
    again = reopen(
        closed, by_city="xuzhou", reason="缺照片", now=at(date(2026, 11, 3)), due_on=date(2026, 12, 20)
    )
    assert again.state is ActionItemState.REOPENED and again.is_open
    assert again.evidence is None and again.closed_at is None
    assert again.due_on == date(2026, 12, 20)
    assert again.active_since == at(date(2026, 11, 3))
    assert [e.kind for e in again.history] == [EventKind.OPENED, EventKind.CLOSED, EventKind.REOPENED]


def test_overdue_is_read_from_the_due_day_in_shanghai(item: ActionItemRecord) -> None:
    assert overdue_from(DUE) == at(date(2026, 12, 3), 0)
    assert not is_overdue(item, at(DUE, 23, 59))
    assert is_overdue(item, at(date(2026, 12, 3), 0))
    # 16:30 UTC on the 2nd is already the 3rd in Shanghai.
    assert is_overdue(item, datetime(2026, 12, 2, 16, 30, tzinfo=ZoneInfo("UTC")))
    assert days_overdue(item, at(date(2026, 12, 5))) == 3
    closed = close(item, by_city="linyi", evidence=EVIDENCE, now=at(date(2026, 12, 4)))
    assert not is_overdue(closed, at(date(2026, 12, 5)))
    assert closed_on_time(closed) is False
    assert closed_on_time(item) is None


def test_slots_follow_the_plan_with_keys_naming_the_day(item: ActionItemRecord) -> None:
    slots = reminder_slots(item, through=date(2026, 12, 4))
    assert [s.key for s in slots] == [
        "action-item:a1:before-3d-2026-11-29",
        "action-item:a1:before-1d-2026-12-01",
        "action-item:a1:overdue-2026-12-03",
        "action-item:a1:overdue-2026-12-04",
    ]
    assert [s.kind for s in slots] == [ReminderKind.BEFORE] * 2 + [ReminderKind.OVERDUE] * 2
    assert [s.notify_chair for s in slots] == [False, False, True, True]
    assert slots[0].fire_at == at(date(2026, 11, 29))
    assert [s.days for s in slots] == [3, 1, 1, 2]


def test_the_current_slot_is_due_until_the_next_one_comes(item: ActionItemRecord) -> None:
    def keys(now: datetime) -> list[str]:
        return [r.key for r in due_reminders(item, now)]

    assert keys(at(date(2026, 11, 29), 8, 59)) == []
    assert keys(at(date(2026, 11, 29), 9)) == ["action-item:a1:before-3d-2026-11-29"]
    assert keys(at(date(2026, 11, 30), 18)) == ["action-item:a1:before-3d-2026-11-29"]
    assert keys(at(date(2026, 12, 1), 10)) == ["action-item:a1:before-1d-2026-12-01"]
    assert keys(at(date(2026, 12, 3), 9)) == ["action-item:a1:overdue-2026-12-03"]


def test_every_slot_is_sent_exactly_once_by_a_caller_that_ticks_often(item: ActionItemRecord) -> None:
    sent: list[str] = []
    now = at(date(2026, 11, 1))
    while now < at(date(2026, 12, 6)):
        for reminder in due_reminders(item, now):
            if reminder.key not in sent:
                sent.append(reminder.key)
        now += timedelta(minutes=37)
    assert sent == [s.key for s in reminder_slots(item, through=date(2026, 12, 5))]


def test_a_hub_that_was_down_sends_the_current_slot_not_the_stale_ones(item: ActionItemRecord) -> None:
    # Down from the 28th to the 4th: "three days left" is no longer true, only the newest slot is.
    assert [r.key for r in due_reminders(item, at(date(2026, 12, 4), 11))] == [
        "action-item:a1:overdue-2026-12-04"
    ]


def test_no_reminder_from_before_the_item_was_opened_nor_once_closed() -> None:
    late = open_item(
        "a3", owner_city="linyi", chair_city="xuzhou", due_on=DUE, now=at(date(2026, 11, 30), 15)
    )
    assert due_reminders(late, at(date(2026, 11, 30), 16)) == ()
    assert [r.key for r in due_reminders(late, at(date(2026, 12, 1), 9))] == [
        "action-item:a3:before-1d-2026-12-01"
    ]
    closed = close(late, by_city="linyi", evidence=EVIDENCE, now=at(date(2026, 12, 1), 10))
    assert due_reminders(closed, at(date(2026, 12, 5))) == ()
    assert next_reminder_at(closed, at(date(2026, 12, 5))) is None


def test_a_reopened_item_is_chased_again_with_new_keys_for_a_new_due_day(item: ActionItemRecord) -> None:
    closed = close(item, by_city="linyi", evidence=EVIDENCE, now=at(date(2026, 11, 20)))
    again = reopen(
        closed, by_city="xuzhou", reason="缺照片", now=at(date(2026, 11, 25), 14), due_on=date(2026, 12, 10)
    )
    assert due_reminders(again, at(date(2026, 11, 26))) == ()
    assert [r.key for r in due_reminders(again, at(date(2026, 12, 7), 9))] == [
        "action-item:a1:before-3d-2026-12-07"
    ]


def test_next_reminder_is_the_timer_for_the_caller(item: ActionItemRecord) -> None:
    assert next_reminder_at(item, at(date(2026, 11, 1))) == at(date(2026, 11, 29))
    assert next_reminder_at(item, at(date(2026, 11, 29), 9)) == at(date(2026, 12, 1))
    assert next_reminder_at(item, at(date(2026, 12, 10), 12)) == at(date(2026, 12, 11))


def test_a_custom_plan() -> None:
    plan = ReminderPlan(before_days=(7,), at=time(14, 30), overdue_daily=False)
    item = open_item("b", owner_city="linyi", chair_city="xuzhou", due_on=DUE, now=at(date(2026, 11, 1)))
    slots = reminder_slots(item, through=date(2026, 12, 31), plan=plan)
    assert [(s.key, s.fire_at) for s in slots] == [
        ("action-item:b:before-7d-2026-11-25", at(date(2026, 11, 25), 14, 30))
    ]


def test_carried_over_counts_the_meetings_it_stayed_open_through(item: ActionItemRecord) -> None:
    meetings = [at(date(2026, 10, 1)), at(date(2026, 12, 15)), at(date(2027, 6, 15))]
    assert carried_over_count(item, meetings) == 2
    closed = close(item, by_city="linyi", evidence=EVIDENCE, now=at(date(2027, 1, 5)))
    assert carried_over_count(closed, meetings) == 1
    assert not was_open_at(closed, at(date(2027, 6, 15)))
    assert was_open_at(closed, at(date(2026, 12, 15)))
    assert not was_open_at(closed, at(date(2026, 10, 1)))


def test_carry_overs_list_the_open_items_most_carried_first(item: ActionItemRecord) -> None:
    newer = open_item(
        "a0", owner_city="heze", chair_city="xuzhou", due_on=date(2027, 3, 1), now=at(date(2026, 12, 20))
    )
    done = close(
        open_item("a9", owner_city="heze", chair_city="xuzhou", due_on=DUE, now=at(date(2026, 11, 1))),
        by_city="heze",
        evidence=EVIDENCE,
        now=at(date(2026, 11, 5)),
    )
    listed = carry_overs([newer, done, item], at(date(2027, 6, 15)), held_starts=[at(date(2026, 12, 15))])
    assert [(c.item.id, c.times) for c in listed] == [("a1", 2), ("a0", 1)]


def test_naive_times_are_refused(item: ActionItemRecord) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_reminders(item, datetime(2026, 12, 1, 9))
