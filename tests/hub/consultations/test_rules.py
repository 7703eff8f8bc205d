"""Consultation and conference rules: rotation, schedule, quorum, resolutions, minutes, assessment."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.consultations import Answer, ConferenceBody, DecisionMode, Quorum, Vote
from hub.consultations.rules import (
    CSV_COLUMNS,
    ActionRecord,
    AgendaRecord,
    MeetingRecord,
    Minutes,
    MinutesSigned,
    Outcome,
    RotationRole,
    Skip,
    StaleRevision,
    Swap,
    Turn,
    add_months,
    agenda_deadline,
    assessment,
    assessment_rows,
    body_turns,
    creation_instant,
    needed,
    next_turns,
    plan,
    planned_start,
    quorum,
    represented_by_answers,
    resolution_outcome,
    rotation,
    save_minutes,
    seq_to_create,
    sign_minutes,
    submitted_on_time,
)
from hub.kernel.errors import Forbidden, InvalidInput

SH = ZoneInfo("Asia/Shanghai")
SAMPLE_BODY = Path(__file__).resolve().parents[2] / "samples" / "consultations" / "conference-body.json"
CITIES = [
    c["slug"]
    for c in json.loads(
        (Path(__file__).resolve().parents[3] / "hub/data/huaihai_cities.json").read_text("utf-8")
    )["cities"]
]


@pytest.fixture
def body() -> ConferenceBody:
    return ConferenceBody.model_validate_json(SAMPLE_BODY.read_bytes())


ORDER = (
    "heze",
    "jining",
    "xuzhou",
    "linyi",
    "shangqiu",
    "huaibei",
    "suzhou-ah",
    "zaozhuang",
    "suqian",
    "lianyungang",
)


def hosts(events: list[Skip | Swap], through: int = 12) -> list[str]:
    return [turn.host for turn in rotation(ORDER, "heze", events, through_seq=through)]


# Rotation -----------------------------------------------------------------------------------------


def test_without_changes_every_city_hosts_once_per_round_and_chairs_its_own_meeting() -> None:
    turns = rotation(ORDER, "heze", [], through_seq=30)
    assert [t.host for t in turns[:10]] == list(ORDER)
    for start in range(21):
        assert sorted(t.host for t in turns[start : start + 10]) == sorted(ORDER)
    assert all(t.host == t.chair for t in turns)
    assert sorted(ORDER) == sorted(CITIES)


def test_a_skip_shifts_the_rest_up_and_the_city_waits_a_full_round() -> None:
    skipped = hosts([Skip(3, "xuzhou", "汛期抢险，无法承办")])
    assert skipped == [
        "heze",
        "jining",
        "linyi",
        "shangqiu",
        "huaibei",
        "suzhou-ah",
        "zaozhuang",
        "suqian",
        "lianyungang",
        "heze",
        "jining",
        "xuzhou",
    ]


def test_a_swap_gives_the_turn_back_at_the_other_citys_place() -> None:
    assert hosts([Swap(3, "xuzhou", "linyi", "场馆检修")])[:5] == [
        "heze",
        "jining",
        "linyi",
        "xuzhou",
        "shangqiu",
    ]
    far = hosts([Swap(3, "xuzhou", "suqian", "换届")])
    assert far[2] == "suqian" and far[8] == "xuzhou" and far[9] == "lianyungang"


def test_a_swap_made_long_ago_still_owes_its_turn() -> None:
    # Meeting 9 swapped with meeting 12's city; the next ten from meeting 10 must still honour it.
    events = [Swap(9, "suqian", "xuzhou", "灾后重建")]
    turns = next_turns(ORDER, "heze", events, after_seq=10, count=3)
    assert [t.host for t in turns] == ["heze", "jining", "suqian"]
    assert [t.seq for t in turns] == [11, 12, 13]


def test_next_turns_are_a_window_of_the_whole_rotation() -> None:
    events = [Skip(4, "linyi", "原因"), Swap(7, "zaozhuang", "heze", "原因")]
    assert (
        next_turns(ORDER, "heze", events, after_seq=5, count=10)
        == rotation(ORDER, "heze", events, through_seq=15)[5:]
    )


def test_a_chair_only_swap_leaves_the_host() -> None:
    turns = rotation(
        ORDER, "heze", [Swap(2, "jining", "xuzhou", "主席因公", role=RotationRole.CHAIR)], through_seq=3
    )
    assert turns == [Turn(1, "heze", "heze"), Turn(2, "jining", "xuzhou"), Turn(3, "xuzhou", "jining")]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (Skip(3, "linyi", "原因"), "is xuzhou's turn, not linyi's"),
        (Skip(3, "xuzhou", "  "), "gives no reason"),
        (Skip(0, "heze", "原因"), "meetings count from 1"),
        (Swap(3, "xuzhou", "xuzhou", "原因"), "cannot take"),
        (Swap(3, "xuzhou", "hefei", "原因"), "cannot take"),
    ],
)
def test_a_change_that_cannot_apply_is_refused(event: Skip | Swap, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        rotation(ORDER, "heze", [event], through_seq=5)


def test_rotation_input_is_checked() -> None:
    with pytest.raises(InvalidInput, match="not in the rotation order"):
        rotation(ORDER, "hefei", [], through_seq=1)
    with pytest.raises(InvalidInput, match="each city once"):
        rotation(("heze", "heze"), "heze", [], through_seq=1)
    with pytest.raises(InvalidInput, match="nobody to pass the turn to"):
        rotation(("heze",), "heze", [Skip(1, "heze", "原因")], through_seq=1)


def test_random_changes_neither_lose_nor_invent_a_turn() -> None:
    # A swap exchanges two turns and a skip gives one up: the hosts plus the skipped turns are
    # always the plain rotation's turns, whatever the order of changes.
    rng = random.Random(13)
    for _ in range(200):
        events: list[Skip | Swap] = []
        for seq in sorted(rng.sample(range(1, 40), 6)):
            current = rotation(ORDER, "heze", events, through_seq=seq)[-1].host
            if rng.random() < 0.5:
                events.append(Skip(seq, current, "原因"))
            else:
                other = rng.choice([c for c in ORDER if c != current])
                events.append(Swap(seq, current, other, "原因"))
        turns = rotation(ORDER, "heze", events, through_seq=60)
        skipped = [e.city for e in events if isinstance(e, Skip)]
        plain = [ORDER[n % len(ORDER)] for n in range(60 + len(skipped))]
        assert Counter([t.host for t in turns] + skipped) == Counter(plain)
        for event in events:
            taken = turns[event.seq - 1].host
            assert taken != event.city
            if isinstance(event, Swap):
                assert taken == event.with_city


# Schedule -----------------------------------------------------------------------------------------


def test_meeting_dates_follow_the_rhythm_in_shanghai(body: ConferenceBody) -> None:
    assert planned_start(body, 1) == datetime(2020, 6, 18, 9, tzinfo=SH)
    assert planned_start(body, 2) == datetime(2020, 12, 18, 9, tzinfo=SH)
    assert planned_start(body, 13) == datetime(2026, 6, 18, 9, tzinfo=SH)
    assert planned_start(body, 2).astimezone(UTC) == datetime(2020, 12, 18, 1, tzinfo=UTC)
    quarterly = body.model_copy(update={"rhythm_months": 3})
    assert [planned_start(quarterly, n).date() for n in (1, 2, 3, 4, 5)] == [
        date(2020, 6, 18),
        date(2020, 9, 18),
        date(2020, 12, 18),
        date(2021, 3, 18),
        date(2021, 6, 18),
    ]
    with pytest.raises(ValueError, match="count from 1"):
        planned_start(body, 0)


def test_an_edited_definition_runs_its_rhythm_and_rotation_from_its_own_meeting(body: ConferenceBody) -> None:
    # From meeting 5 on: every four months from 1 March 2023, the rotation restarting at the last city.
    order = body.rotation_order
    edited = body.model_copy(
        update={
            "rhythm_months": 4,
            "first_meeting_on": date(2023, 3, 1),
            "dates_from_seq": 5,
            "first_host": order[-1],
            "rotation_from_seq": 5,
        }
    )
    assert [planned_start(edited, n).date() for n in (5, 6, 7)] == [
        date(2023, 3, 1),
        date(2023, 7, 1),
        date(2023, 11, 1),
    ]
    with pytest.raises(ValueError, match="before this definition"):
        planned_start(edited, 4)
    # A skip recorded for meeting 3 belonged to the rotation before; one for meeting 6 still counts.
    events = [Skip(3, order[2], "earlier"), Skip(6, order[0], "承办全省演练")]
    turns = body_turns(edited, events, after_seq=4, count=3)
    assert [(t.seq, t.host) for t in turns] == [(5, order[-1]), (6, order[1]), (7, order[2])]


def test_add_months_keeps_the_day_and_refuses_days_some_months_lack() -> None:
    assert add_months(date(2026, 11, 28), 3) == date(2027, 2, 28)
    with pytest.raises(ValueError, match="1 to 28"):
        add_months(date(2026, 1, 31), 1)


def test_deadlines_and_creation_instants() -> None:
    start = datetime(2026, 6, 18, 9, tzinfo=SH)
    assert agenda_deadline(start, 7) == datetime(2026, 6, 11, 9, tzinfo=SH)
    assert creation_instant(start) == datetime(2026, 5, 19, 9, tzinfo=SH)
    assert submitted_on_time(datetime(2026, 6, 11, 0, 59, tzinfo=UTC), start, 7)
    assert not submitted_on_time(datetime(2026, 6, 11, 1, 0, 1, tzinfo=UTC), start, 7)
    with pytest.raises(ValueError, match="timezone-aware"):
        agenda_deadline(datetime(2026, 6, 18, 9), 7)


def test_plan_joins_dates_rotation_and_deadlines(body: ConferenceBody) -> None:
    planned = plan(body, [Skip(13, "xuzhou", "承办冲突")], after_seq=12, count=10)
    assert [p.seq for p in planned] == list(range(13, 23))
    first = planned[0]
    assert (first.host, first.chair) == ("linyi", "linyi")
    assert first.starts_at == datetime(2026, 6, 18, 9, tzinfo=SH)
    assert first.ends_at - first.starts_at == timedelta(hours=3)
    assert first.create_at == datetime(2026, 5, 19, 9, tzinfo=SH)
    assert first.agenda_deadline == datetime(2026, 6, 11, 9, tzinfo=SH)
    assert planned[-1].host == "xuzhou"


def test_the_next_meeting_is_created_thirty_days_ahead(body: ConferenceBody) -> None:
    assert seq_to_create(body, datetime(2026, 5, 19, 8, 59, tzinfo=SH), last_created_seq=12) is None
    assert seq_to_create(body, datetime(2026, 5, 19, 9, tzinfo=SH), last_created_seq=12) == 13
    assert seq_to_create(body, datetime(2026, 5, 20, tzinfo=SH), last_created_seq=13) is None


# Quorum -------------------------------------------------------------------------------------------


def test_majority_of_invited_cities() -> None:
    assert not quorum(CITIES, CITIES[:5]).met
    result = quorum(CITIES, CITIES[:6])
    assert (result.met, result.represented, result.needed, result.invited) == (True, 6, 6, 10)
    assert result.missing == tuple(sorted(CITIES[6:]))


def test_only_invited_cities_count_and_nobody_invited_is_no_quorum() -> None:
    assert not quorum(["linyi", "xuzhou", "heze"], ["linyi", "jining", "suqian"]).met
    assert not quorum([], []).met


def test_the_share_is_a_parameter() -> None:
    two_thirds = Quorum(numerator=2, denominator=3, strictly_more=False)
    assert needed(9, two_thirds) == 6 and needed(10, two_thirds) == 7
    assert quorum(CITIES, CITIES[:7], two_thirds).met
    assert not quorum(CITIES, CITIES[:6], two_thirds).met
    everyone = Quorum(numerator=1, denominator=1, strictly_more=False)
    assert not quorum(CITIES, CITIES[:9], everyone).met


def test_accepted_and_delegated_answers_represent_a_city() -> None:
    answers = {"linyi": Answer.ACCEPT, "xuzhou": Answer.DELEGATE, "heze": Answer.DECLINE, "jining": None}
    assert represented_by_answers(answers) == {"linyi", "xuzhou"}


# Resolutions --------------------------------------------------------------------------------------


def test_consensus_adopts_and_votes_need_a_majority_of_those_cast() -> None:
    present = ["linyi", "xuzhou", "heze", "jining"]
    assert resolution_outcome(DecisionMode.CONSENSUS, {}, present) is Outcome.ADOPTED
    votes = {"linyi": Vote.APPROVE, "xuzhou": Vote.APPROVE, "heze": Vote.REJECT, "jining": Vote.ABSTAIN}
    assert resolution_outcome(DecisionMode.VOTE, votes, present) is Outcome.ADOPTED
    tie = {"linyi": Vote.APPROVE, "heze": Vote.REJECT}
    assert resolution_outcome(DecisionMode.VOTE, tie, present) is Outcome.REJECTED
    assert resolution_outcome(DecisionMode.VOTE, {"linyi": Vote.ABSTAIN}, present) is Outcome.REJECTED
    with pytest.raises(InvalidInput, match="not present cannot vote: suqian"):
        resolution_outcome(DecisionMode.VOTE, {"suqian": Vote.APPROVE}, present)
    with pytest.raises(InvalidInput, match="consensus carries no votes"):
        resolution_outcome(DecisionMode.CONSENSUS, {"linyi": Vote.APPROVE}, present)


# Minutes ------------------------------------------------------------------------------------------

T0 = datetime(2026, 6, 18, 10, tzinfo=SH)


def test_every_save_that_changes_something_appends_one_revision() -> None:
    first = save_minutes(Minutes(), author="wang", city="jining", at=T0, content="一、", base_revision=0)
    assert first.revision is not None and first.revision.number == 1
    same = save_minutes(first.minutes, author="li", city="jining", at=T0, content="一、", base_revision=1)
    assert same.revision is None and same.minutes == first.minutes
    second = save_minutes(
        first.minutes,
        author="li",
        city="jining",
        at=T0 + timedelta(minutes=5),
        content="一、二、",
        base_revision=1,
    )
    assert [r.number for r in second.minutes.revisions] == [1, 2]
    assert second.minutes.revisions[0] == first.minutes.revisions[0]
    assert (second.minutes.latest.author, second.minutes.latest.content) == ("li", "一、二、")
    empty = save_minutes(Minutes(), author="wang", city="jining", at=T0, content="  ", base_revision=0)
    assert empty.revision is None


def test_a_save_over_a_newer_revision_is_a_conflict() -> None:
    saved = save_minutes(Minutes(), author="wang", city="jining", at=T0, content="a", base_revision=0)
    with pytest.raises(StaleRevision) as error:
        save_minutes(saved.minutes, author="li", city="jining", at=T0, content="b", base_revision=0)
    assert error.value.status == 409 and error.value.details == {"latest": 1, "base": 0}


def test_signed_minutes_are_frozen() -> None:
    saved = save_minutes(
        Minutes(), author="wang", city="jining", at=T0, content="a", public_part="p", base_revision=0
    )
    with pytest.raises(Forbidden, match="only the chair"):
        sign_minutes(saved.minutes, by="zhao", by_city="linyi", chair_city="jining", at=T0)
    signed = sign_minutes(saved.minutes, by="zhang", by_city="jining", chair_city="jining", at=T0)
    assert signed.is_signed and signed.signed_revision == 1 and signed.signed_by == "zhang"
    with pytest.raises(MinutesSigned) as error:
        save_minutes(signed, author="zhang", city="jining", at=T0, content="b", base_revision=1)
    assert error.value.status == 409 and error.value.code == "minutes_signed"
    with pytest.raises(MinutesSigned):
        save_minutes(
            signed, author="zhang", city="jining", at=T0, content="a", public_part="p", base_revision=1
        )
    with pytest.raises(MinutesSigned, match="already signed"):
        sign_minutes(signed, by="zhang", by_city="jining", chair_city="jining", at=T0)
    with pytest.raises(InvalidInput, match="no minutes to sign"):
        sign_minutes(Minutes(), by="zhang", by_city="jining", chair_city="jining", at=T0)


# Assessment ---------------------------------------------------------------------------------------


def test_annual_figures_per_city() -> None:
    now = datetime(2027, 1, 10, tzinfo=SH)
    invited = frozenset({"linyi", "xuzhou", "heze"})
    meetings = [
        MeetingRecord(datetime(2026, 6, 18, 9, tzinfo=SH), invited, frozenset({"linyi", "xuzhou"})),
        MeetingRecord(datetime(2026, 12, 18, 9, tzinfo=SH), invited, frozenset({"linyi"})),
        MeetingRecord(datetime(2026, 9, 1, 9, tzinfo=SH), invited, frozenset(), cancelled=True),
        MeetingRecord(datetime(2026, 10, 1, 9, tzinfo=SH), invited, invited, exercise=True),
        # 1 January 00:30 in Shanghai is still 2026 in UTC: it counts for 2027.
        MeetingRecord(datetime(2026, 12, 31, 16, 30, tzinfo=UTC), invited, invited),
    ]
    deadline = datetime(2026, 6, 11, 9, tzinfo=SH)
    agenda = [
        AgendaRecord("linyi", deadline - timedelta(days=1), deadline),
        AgendaRecord("linyi", deadline + timedelta(minutes=1), deadline),
        AgendaRecord("xuzhou", deadline, deadline),
    ]
    actions = [
        ActionRecord("linyi", date(2026, 7, 31), datetime(2026, 7, 31, 23, 0, tzinfo=SH)),
        ActionRecord("linyi", date(2026, 8, 31), datetime(2026, 9, 1, 0, 5, tzinfo=SH)),
        ActionRecord("linyi", date(2026, 11, 30), None),
        ActionRecord("xuzhou", date(2027, 2, 1), None),
    ]
    figures = {
        row.city: row
        for row in assessment(
            2026,
            ["linyi", "xuzhou", "heze", "jining"],
            meetings=meetings,
            agenda_items=agenda,
            action_items=actions,
            now=now,
        )
    }
    linyi = figures["linyi"]
    assert (linyi.meetings_invited, linyi.meetings_attended) == (2, 2)
    assert (linyi.agenda_submitted, linyi.agenda_on_time) == (2, 1)
    assert (
        linyi.actions_due,
        linyi.actions_closed_on_time,
        linyi.actions_closed_late,
        linyi.actions_open,
    ) == (
        3,
        1,
        1,
        1,
    )
    assert linyi.actions_on_time_rate == Fraction(1, 3)
    assert figures["xuzhou"].attendance_rate == Fraction(1, 2)
    assert figures["xuzhou"].agenda_on_time_rate == 1
    assert figures["xuzhou"].actions_due == 0 and figures["xuzhou"].actions_on_time_rate is None
    assert figures["heze"].attendance_rate == 0
    assert figures["jining"].meetings_invited == 0 and figures["jining"].attendance_rate is None
    rows = assessment_rows(figures.values())
    assert list(rows[0]) == list(CSV_COLUMNS)


def test_meetings_not_yet_held_do_not_count() -> None:
    meetings = [MeetingRecord(datetime(2026, 12, 18, 9, tzinfo=SH), frozenset({"linyi"}), frozenset())]
    before = assessment(2026, ["linyi"], meetings=meetings, now=datetime(2026, 12, 1, tzinfo=SH))
    assert before[0].meetings_invited == 0
    after = assessment(2026, ["linyi"], meetings=meetings, now=datetime(2026, 12, 19, tzinfo=SH))
    assert after[0].meetings_invited == 1 and after[0].meetings_attended == 0


def test_default_time_is_nine_in_the_morning(body: ConferenceBody) -> None:
    assert body.meeting_time == time(9, 0)
