"""Drill rules: the inject timetable and its controls, response measurement, AAR figures, programme."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.drills import ExpectedAction, Inject, TaskRating
from hub.drills import rules
from hub.drills.rules import (
    ActionRecord,
    DeliveryRecord,
    DrillClock,
    DrillHeld,
    DrillRuleError,
    ObservationRecord,
    SlotState,
    StepKey,
)

T0 = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


def inject(number: int, offset_s: int, **fields: Any) -> Inject:
    data = {
        "number": number,
        "offset_s": offset_s,
        "city": "xuzhou",
        "channel": "desk_notice",
        "message": "m",
    }
    return Inject.model_validate(data | fields)


MSEL = (
    inject(1, 0),
    inject(2, 600),
    inject(3, 1200),
    inject(4, 1800, expected_action="aid_requested", expected_within_s=600),
    inject(5, 2400, contingency_of=4),
)


def clock(scale: float = 1.0) -> DrillClock:
    return DrillClock(started_at=T0, duration=timedelta(hours=1), scale=scale)


def state(slots: tuple[rules.Slot, ...]) -> dict[int, tuple[SlotState, datetime | None]]:
    return {slot.number: (slot.state, slot.due_at) for slot in slots}


# Step keys ---------------------------------------------------------------------------------------


def test_step_keys_name_each_step_once() -> None:
    assert rules.startex_key(7) == "drill:7:startex"
    assert rules.inject_key(7, 12) == "drill:7:inject:12"
    assert rules.flag_key("d-7", 12) == "drill:d-7:flag:12"
    assert rules.endex_key(7) == "drill:7:endex"
    assert rules.aar_key(7) == "drill:7:aar"


@pytest.mark.parametrize(
    "key", ["drill:7:startex", "drill:7:inject:12", "drill:x_1:flag:3", "drill:7:endex", "drill:7:aar"]
)
def test_step_keys_read_back(key: str) -> None:
    assert str(rules.parse_step_key(key)) == key


def test_step_key_parts() -> None:
    assert rules.parse_step_key("drill:7:inject:12") == StepKey("7", "inject", 12)
    assert rules.parse_step_key("drill:7:aar") == StepKey("7", "aar")


@pytest.mark.parametrize(
    "key",
    [
        "drill:7:inject",
        "drill:7:startex:1",
        "drill:7:inject:0",
        "drill::aar",
        "drill:7:lunch",
        "bulletin:7:x",
    ],
)
def test_other_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a drill step key"):
        rules.parse_step_key(key)


@pytest.mark.parametrize(("drill_id", "number"), [("a:b", 1), ("", 1), (True, 1), (7, 0), (7, True)])
def test_bad_key_parts_are_refused(drill_id: Any, number: Any) -> None:
    with pytest.raises(ValueError, match="invalid"):
        rules.inject_key(drill_id, number)


# Timetable ---------------------------------------------------------------------------------------


def test_timetable_puts_each_inject_at_its_offset_and_holds_contingencies() -> None:
    slots = rules.timetable(MSEL, T0)
    assert state(slots) == {
        1: (SlotState.PENDING, T0),
        2: (SlotState.PENDING, T0 + 10 * MIN),
        3: (SlotState.PENDING, T0 + 20 * MIN),
        4: (SlotState.PENDING, T0 + 30 * MIN),
        5: (SlotState.HELD, None),
    }


def test_a_drill_at_scale_k_delivers_at_startex_plus_offset_over_k() -> None:
    slots = rules.timetable(MSEL, T0, scale=30)
    assert state(slots)[4] == (SlotState.PENDING, T0 + 60 * SEC)
    assert clock(30).endex_due() == T0 + 2 * MIN


@pytest.mark.parametrize("scale", [0, 0.5, -1, float("nan"), float("inf"), 3601])
def test_scale_out_of_range_is_refused(scale: float) -> None:
    with pytest.raises(ValueError, match="time scale"):
        rules.timetable(MSEL, T0, scale=scale)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rules.timetable(MSEL, T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        rules.due_injects((), clock(), T0.replace(tzinfo=None))


def test_due_injects_is_a_query_over_the_table() -> None:
    slots = rules.timetable(MSEL, T0)
    assert [s.number for s in rules.due_injects(slots, clock(), T0 - SEC)] == []
    assert [s.number for s in rules.due_injects(slots, clock(), T0)] == [1]
    assert [s.number for s in rules.due_injects(slots, clock(), T0 + 25 * MIN)] == [1, 2, 3]
    # Asking again changes nothing: the caller's keyed steps make delivery happen once.
    assert rules.due_injects(slots, clock(), T0 + 25 * MIN) == rules.due_injects(
        slots, clock(), T0 + 25 * MIN
    )


def test_delivered_injects_are_no_longer_due_and_keep_their_lateness() -> None:
    slots = rules.timetable(MSEL, T0)
    slots = rules.mark_delivered(slots, 1, T0 + 400 * timedelta(milliseconds=1))
    assert [s.number for s in rules.due_injects(slots, clock(), T0 + 11 * MIN)] == [2]
    (first,) = [s for s in slots if s.number == 1]
    assert rules.lateness(first) == timedelta(milliseconds=400)
    # A duplicate report of the same delivery is harmless.
    assert rules.mark_delivered(slots, 1, T0 + MIN) == slots


def test_a_late_tick_still_delivers_what_fell_due_even_past_endex() -> None:
    slots = rules.timetable(MSEL, T0)
    assert [s.number for s in rules.due_injects(slots, clock(), T0 + 2 * timedelta(hours=1))] == [1, 2, 3, 4]


def test_pause_stops_the_timer_and_resume_shifts_only_pending_injects() -> None:
    slots = rules.timetable(MSEL, T0)
    slots = rules.mark_delivered(slots, 1, T0 + SEC)
    paused = rules.pause(clock(), T0 + 5 * MIN)
    assert rules.due_injects(slots, paused, T0 + 30 * MIN) == ()
    assert paused.endex_due() is None
    resumed, slots = rules.resume(paused, slots, T0 + 10 * MIN)
    assert state(slots) == {
        1: (SlotState.DELIVERED, T0),
        2: (SlotState.PENDING, T0 + 15 * MIN),
        3: (SlotState.PENDING, T0 + 25 * MIN),
        4: (SlotState.PENDING, T0 + 35 * MIN),
        5: (SlotState.HELD, None),
    }
    (delivered,) = [s for s in slots if s.number == 1]
    assert delivered.delivered_at == T0 + SEC
    assert resumed.endex_due() == T0 + 65 * MIN
    assert [s.number for s in rules.due_injects(slots, resumed, T0 + 15 * MIN)] == [2]


def test_two_pauses_add_up() -> None:
    slots = rules.timetable(MSEL, T0)
    c, slots = rules.resume(rules.pause(clock(), T0 + MIN), slots, T0 + 3 * MIN)
    c, slots = rules.resume(rules.pause(c, T0 + 4 * MIN), slots, T0 + 7 * MIN)
    assert c.paused_total == 5 * MIN
    assert state(slots)[2] == (SlotState.PENDING, T0 + 15 * MIN)


def test_scenario_time_stands_still_while_paused() -> None:
    c = clock(scale=10)
    assert c.scenario_elapsed(T0 + MIN) == 10 * MIN
    paused = rules.pause(c, T0 + MIN)
    assert paused.scenario_elapsed(T0 + 5 * MIN) == 10 * MIN
    resumed, _ = rules.resume(paused, (), T0 + 5 * MIN)
    assert resumed.scenario_elapsed(T0 + 6 * MIN) == 20 * MIN


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (lambda: rules.pause(rules.pause(clock(), T0 + MIN), T0 + 2 * MIN), "already_paused"),
        (lambda: rules.resume(clock(), (), T0 + MIN), "not_paused"),
        (lambda: rules.resume(rules.pause(clock(), T0 + 2 * MIN), (), T0 + MIN), "resume_before_pause"),
        (lambda: rules.pause(clock(), T0 - MIN), "before_startex"),
    ],
)
def test_pause_and_resume_refusals(action: Any, code: str) -> None:
    with pytest.raises(DrillRuleError) as caught:
        action()
    assert caught.value.code == code


def test_skip_keeps_the_inject_with_its_reason() -> None:
    slots = rules.skip(rules.timetable(MSEL, T0), 2, "  徐州市已在处置真实警情  ")
    (skipped,) = [s for s in slots if s.number == 2]
    assert (skipped.state, skipped.skip_reason) == (SlotState.SKIPPED, "徐州市已在处置真实警情")
    assert [s.number for s in rules.due_injects(slots, clock(), T0 + 15 * MIN)] == [1]
    assert rules.skip(slots, 2, "another reason") == slots
    assert len(slots) == len(MSEL)


def test_skip_needs_a_reason_and_a_pending_inject() -> None:
    slots = rules.mark_delivered(rules.timetable(MSEL, T0), 1, T0)
    with pytest.raises(DrillRuleError, match="say why"):
        rules.skip(slots, 2, "  ")
    with pytest.raises(DrillRuleError, match="inject 1 is delivered; it cannot be skipped"):
        rules.skip(slots, 1, "late")
    with pytest.raises(DrillRuleError, match="no inject 99"):
        rules.skip(slots, 99, "typo")


def test_send_now_brings_an_inject_forward_and_marks_it_manual() -> None:
    slots = rules.send_now(rules.timetable(MSEL, T0), 3, T0 + 2 * MIN)
    assert [s.number for s in rules.due_injects(slots, clock(), T0 + 2 * MIN)] == [1, 3]
    (sent,) = [s for s in slots if s.number == 3]
    assert sent.manual
    slots = rules.send_now(slots, 5, T0 + 3 * MIN)  # a held contingency, by hand
    assert state(slots)[5] == (SlotState.PENDING, T0 + 3 * MIN)
    slots = rules.mark_delivered(slots, 3, T0 + 2 * MIN)
    with pytest.raises(DrillRuleError, match="cannot be sent"):
        rules.send_now(slots, 3, T0 + 4 * MIN)


def test_contingencies_are_released_when_their_parent_is_flagged() -> None:
    slots = rules.timetable(MSEL, T0)
    assert rules.contingencies_to_release(slots, [4]) == (5,)
    assert rules.contingencies_to_release(slots, [3]) == ()
    slots = rules.release_contingency(slots, 5, T0 + 41 * MIN)
    assert state(slots)[5] == (SlotState.PENDING, T0 + 41 * MIN)
    assert rules.contingencies_to_release(slots, [4]) == ()
    with pytest.raises(DrillRuleError, match="not a held contingency"):
        rules.release_contingency(slots, 5, T0 + 42 * MIN)


def test_adding_a_contingency_during_play() -> None:
    slots = rules.timetable(MSEL, T0)
    extra = inject(6, 1500, contingency_of=2)
    held = rules.add_contingency(slots, extra)
    assert state(held)[6] == (SlotState.HELD, None)
    sent = rules.add_contingency(slots, extra, release_at=T0 + 12 * MIN)
    assert state(sent)[6] == (SlotState.PENDING, T0 + 12 * MIN)
    with pytest.raises(DrillRuleError, match="already used"):
        rules.add_contingency(held, extra)
    with pytest.raises(DrillRuleError, match="names the inject it stands in for"):
        rules.add_contingency(slots, inject(7, 60))
    with pytest.raises(DrillRuleError, match="no inject 9"):
        rules.add_contingency(slots, inject(7, 60, contingency_of=9))
    with pytest.raises(DrillRuleError, match="inject 2 is skipped"):
        rules.add_contingency(rules.skip(slots, 2, "x"), extra)


def test_endex_marks_the_unplayed_and_deletes_nothing() -> None:
    slots = rules.mark_delivered(rules.timetable(MSEL, T0), 1, T0)
    slots = rules.skip(slots, 2, "x")
    closed = rules.close_at_endex(slots)
    assert {s.number: s.state for s in closed} == {
        1: SlotState.DELIVERED,
        2: SlotState.SKIPPED,
        3: SlotState.NOT_PLAYED,
        4: SlotState.NOT_PLAYED,
        5: SlotState.NOT_PLAYED,
    }
    assert rules.due_injects(closed, clock(), T0 + 2 * timedelta(hours=1)) == ()


# Responses ---------------------------------------------------------------------------------------


def delivery(number: int, city: str = "suqian", at: datetime = T0, **fields: Any) -> DeliveryRecord:
    fields.setdefault("expected_action", ExpectedAction.RECEIPT_SIGNED)
    fields.setdefault("expected_within_s", 900)
    return DeliveryRecord(number=number, city=city, delivered_at=at, **fields)


def action(city: str, kind: ExpectedAction, at: datetime, **fields: Any) -> ActionRecord:
    return ActionRecord(city=city, kind=kind, at=at, **fields)


RECEIPT = ExpectedAction.RECEIPT_SIGNED
AID = ExpectedAction.AID_REQUESTED


def test_response_seconds_run_from_delivery_to_the_first_qualifying_action() -> None:
    (measure,) = rules.measure_responses(
        [delivery(2, acknowledged_at=T0 + 5 * SEC)],
        [
            action("suqian", RECEIPT, T0 + 7 * MIN, inject_number=2, ref="r-2"),
            action("suqian", RECEIPT, T0 + 3 * MIN, inject_number=2, ref="r-1"),
            action("xuzhou", RECEIPT, T0 + MIN, inject_number=2),  # another city
            action("suqian", ExpectedAction.NOTICE_READ, T0 + MIN, inject_number=2),  # another kind
        ],
        now=T0 + 20 * MIN,
    )
    assert (measure.response_s, measure.action_ref, measure.in_time, measure.flagged) == (
        180.0,
        "r-1",
        True,
        False,
    )
    assert measure.acknowledged_at == T0 + 5 * SEC
    assert measure.deadline == T0 + 15 * MIN


def test_unanswered_at_the_expected_time_is_flagged() -> None:
    deliveries = [delivery(2)]
    (before,) = rules.measure_responses(deliveries, [], now=T0 + 15 * MIN - SEC)
    assert (before.in_time, before.flagged) == (None, False)
    (at_deadline,) = rules.measure_responses(deliveries, [], now=T0 + 15 * MIN)
    assert (at_deadline.in_time, at_deadline.flagged, at_deadline.response_s) == (False, True, None)
    late = action("suqian", RECEIPT, T0 + 20 * MIN, inject_number=2)
    (answered_late,) = rules.measure_responses(deliveries, [late], now=T0 + 30 * MIN)
    assert (answered_late.in_time, answered_late.flagged, answered_late.response_s) == (False, True, 1200.0)


def test_expected_time_is_scaled_with_the_drill() -> None:
    (measure,) = rules.measure_responses([delivery(2)], [], now=T0 + 30 * SEC, scale=30)
    assert measure.deadline == T0 + 30 * SEC
    assert measure.flagged


def test_an_action_before_delivery_does_not_answer_it() -> None:
    (measure,) = rules.measure_responses(
        [delivery(4, at=T0 + 10 * MIN, expected_action=AID)],
        [action("suqian", AID, T0 + 9 * MIN)],
        now=T0 + 11 * MIN,
    )
    assert measure.first_action_at is None


def test_an_uncorrelated_action_answers_one_inject_the_earliest_waiting() -> None:
    deliveries = [
        delivery(4, at=T0, expected_action=AID),
        delivery(5, at=T0 + 5 * MIN, expected_action=AID),
        delivery(6, city="linyi", at=T0, expected_action=AID),
    ]
    actions = [action("suqian", AID, T0 + 6 * MIN, ref="a-1"), action("suqian", AID, T0 + 8 * MIN, ref="a-2")]
    measures = {m.number: m for m in rules.measure_responses(deliveries, actions, now=T0 + 9 * MIN)}
    assert (measures[4].action_ref, measures[4].response_s) == ("a-1", 360.0)
    assert (measures[5].action_ref, measures[5].response_s) == ("a-2", 180.0)
    assert measures[6].first_action_at is None


def test_device_injects_are_answered_by_that_device_only() -> None:
    acked = ExpectedAction.COMMAND_ACKED
    d = delivery(6, city="xuzhou", device="xz-cmd-01", expected_action=acked, expected_within_s=120)
    other = action("xuzhou", acked, T0 + 10 * SEC, device="xz-cmd-02", inject_number=6)
    mine = action("xuzhou", acked, T0 + 20 * SEC, device="xz-cmd-01", inject_number=6)
    (measure,) = rules.measure_responses([d], [other, mine], now=T0 + MIN)
    assert measure.response_s == 20.0


def test_injects_without_expectation_or_delivery_are_not_measured() -> None:
    deliveries = [
        delivery(1, expected_action=None, expected_within_s=None),
        DeliveryRecord(
            number=2, city="suqian", delivered_at=None, expected_action=RECEIPT, expected_within_s=60
        ),
    ]
    measures = rules.measure_responses(deliveries, [], now=T0 + timedelta(hours=1))
    assert [(m.measured, m.flagged, m.in_time) for m in measures] == [
        (False, False, None),
        (False, False, None),
    ]


# AAR ---------------------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert rules.percentile(values, 90) == 9.0
    assert rules.percentile(values, 100) == 10.0
    assert rules.percentile([5.0], 90) == 5.0
    assert rules.percentile([], 90) is None
    with pytest.raises(ValueError, match="percent"):
        rules.percentile(values, 0)


def test_aar_statistics_per_city_and_overall() -> None:
    deliveries = [delivery(n, at=T0) for n in range(1, 11)] + [
        delivery(11, city="linyi"),
        delivery(12, city="linyi"),
    ]
    # suqian answers injects 1..9 after n minutes (the ninth after the 15-minute limit), never 10.
    answers = [action("suqian", RECEIPT, T0 + n * 2 * MIN, inject_number=n) for n in range(1, 10)]
    answers.append(action("linyi", RECEIPT, T0 + 30 * SEC, inject_number=11))
    measures = rules.measure_responses(deliveries, answers, now=T0 + timedelta(hours=1))
    stats = rules.aar_statistics(measures, [], cities=["suqian", "linyi", "heze"])
    by_city = {s.city: s for s in stats.per_city}
    suqian = by_city["suqian"]
    assert (suqian.measured, suqian.answered, suqian.unanswered, suqian.in_time) == (10, 9, 1, 7)
    assert suqian.median_s == 600.0
    assert suqian.p90_s == 1080.0
    assert suqian.in_time_share == 0.7
    linyi = by_city["linyi"]
    assert (linyi.answered, linyi.in_time_share, linyi.median_s, linyi.p90_s) == (1, 0.5, 30.0, 30.0)
    heze = by_city["heze"]
    assert (heze.measured, heze.in_time_share, heze.median_s) == (0, None, None)
    assert [s.city for s in stats.per_city] == ["heze", "linyi", "suqian"]
    assert (stats.overall.city, stats.overall.measured, stats.overall.in_time) == (None, 12, 8)
    assert sorted(m.number for m in stats.flagged) == [8, 9, 10, 12]


def test_observations_are_grouped_by_objective_in_plan_order() -> None:
    observations = [
        ObservationRecord("李敏", "支援请求规范", T0 + 40 * MIN, "O2", "2.1", TaskRating.PERFORMED),
        ObservationRecord("张伟", "签收延迟", T0 + 20 * MIN, "O1", "1.1", TaskRating.SOME_CHALLENGES),
        ObservationRecord("李敏", "通报格式不统一", T0 + 10 * MIN, "O1", "1.1", TaskRating.SOME_CHALLENGES),
        ObservationRecord("张伟", "指挥部协调顺畅", T0 + 50 * MIN),
    ]
    stats = rules.aar_statistics([], observations, objectives=["O1", "O2"])
    assert [f.objective for f in stats.findings] == ["O1", "O2", None]
    first = stats.findings[0]
    assert [o.text for o in first.observations] == ["通报格式不统一", "签收延迟"]
    assert first.ratings == {TaskRating.SOME_CHALLENGES: 2}
    assert stats.findings[2].ratings == {}
    assert stats.overall.measured == 0


# Programme ---------------------------------------------------------------------------------------


def test_drill_programme_counts_held_drills_per_city_and_year() -> None:
    new_year_eve = datetime(2024, 12, 31, 17, 0, tzinfo=UTC)  # 2025-01-01 01:00 in Asia/Shanghai
    drills = [
        DrillHeld("1", new_year_eve, ("xuzhou", "suqian"), held=True),
        DrillHeld("2", datetime(2025, 6, 1, 1, tzinfo=UTC), ("xuzhou", "xuzhou"), held=True),
        DrillHeld("3", datetime(2025, 7, 1, 1, tzinfo=UTC), ("xuzhou", "linyi"), held=False),
        DrillHeld("4", datetime(2025, 8, 1, 1, tzinfo=UTC), ("heze",), held=True),
    ]
    planned = {("xuzhou", 2025): 2, ("suqian", 2025): 2, ("linyi", 2025): 20}
    rows = {(r.city, r.year): r for r in rules.drill_programme(planned, drills)}
    xuzhou = rows[("xuzhou", 2025)]
    assert (xuzhou.held, xuzhou.drill_ids, xuzhou.rate, xuzhou.meets_target, xuzhou.shortfall) == (
        2,
        ("1", "2"),
        1.0,
        True,
        0,
    )
    suqian = rows[("suqian", 2025)]
    assert (suqian.held, suqian.rate, suqian.meets_target, suqian.shortfall) == (1, 0.5, False, 1)
    linyi = rows[("linyi", 2025)]
    assert (linyi.held, linyi.meets_target, linyi.shortfall) == (0, False, 19)
    heze = rows[("heze", 2025)]
    assert (heze.planned, heze.held, heze.rate, heze.meets_target) == (0, 1, None, None)
    assert ("xuzhou", 2024) not in rows


def test_drill_rate_target_is_95_percent_without_rounding_errors() -> None:
    when = datetime(2025, 3, 1, tzinfo=UTC)
    drills = [DrillHeld(str(n), when, ("xuzhou",), held=True) for n in range(19)]
    (row,) = rules.drill_programme({("xuzhou", 2025): 20}, drills)
    assert (row.rate, row.meets_target, row.shortfall) == (0.95, True, 0)
    (short,) = rules.drill_programme({("xuzhou", 2025): 20}, drills[:18])
    assert (short.meets_target, short.shortfall) == (False, 1)
