"""Calendar feeds and iTIP messages parse with icalendar and expand in Asia/Shanghai."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events
from icalendar import Calendar

from contracts.consultations import ActionItemState, ConferenceBody
from hub.consultations.calendar import (
    AttendeeRole,
    CalendarActionItem,
    CalendarMeeting,
    CityDirectory,
    Invitee,
    MeetingStatus,
    Partstat,
    PlannedSeries,
    cancel,
    feed,
    meeting_uid,
    next_sequence,
    request,
)
from hub.consultations.rules import planned_start

SH = ZoneInfo("Asia/Shanghai")
MEETING_ID = UUID("0b7a3f52-5a1e-4c1b-9a64-3c5d1f0e2a11")
ITEM_ID = UUID("5d0c6a9e-8f7b-4b8e-9c3a-2e1f0d9c8b7a")
BODY_ID = UUID("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
UPDATED = datetime(2026, 5, 19, 9, tzinfo=SH)
SAMPLE_BODY = Path(__file__).resolve().parents[2] / "samples" / "consultations" / "conference-body.json"
DIRECTORY = CityDirectory(names={"jining": "济宁市", "linyi": "临沂市", "xuzhou": "徐州市", "heze": "菏泽市"})


@pytest.fixture
def meeting() -> CalendarMeeting:
    return CalendarMeeting(
        public_id=MEETING_ID,
        sequence=0,
        title="淮海经济区应急管理合作联席会议（第十三次）",
        starts_at=datetime(2026, 6, 18, 9, tzinfo=SH),
        ends_at=datetime(2026, 6, 18, 12, tzinfo=SH),
        organizer_city="jining",
        chair_city="jining",
        invitees=(
            Invitee("jining"),
            Invitee("linyi", partstat=Partstat.ACCEPTED),
            Invitee("xuzhou"),
            Invitee("heze", role=AttendeeRole.OBSERVER),
        ),
        updated_at=UPDATED,
        location="济宁市应急管理局 3 楼会议室",
        video_link="https://video.jining.example.cn/room/13",
    )


def parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def events(cal: Calendar) -> list:
    return [c for c in cal.walk("VEVENT")]


def test_feed_parses_and_times_carry_the_shanghai_zone(meeting: CalendarMeeting) -> None:
    cal = parse(feed([meeting], name="淮海联席会议", directory=DIRECTORY))
    assert cal.get("method") is None
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    (event,) = events(cal)
    assert event["uid"] == meeting_uid(MEETING_ID)
    assert event["dtstart"].params["TZID"] == "Asia/Shanghai"
    assert event.decoded("dtstart") == datetime(2026, 6, 18, 9, tzinfo=SH)
    assert event.decoded("dtstart").astimezone(UTC) == datetime(2026, 6, 18, 1, tzinfo=UTC)
    assert event.decoded("dtstamp").tzinfo is not None and event.decoded("dtstamp").utcoffset() == timedelta(
        0
    )
    assert str(event["status"]) == "CONFIRMED"
    assert "video.jining.example.cn" in str(event["description"])
    assert b"DTSTART;TZID=Asia/Shanghai:20260618T090000" in feed([meeting], name="x")


def test_the_chair_is_role_chair_and_answers_are_partstat(meeting: CalendarMeeting) -> None:
    (event,) = events(parse(feed([meeting], name="x", directory=DIRECTORY)))
    attendees = {str(a): a.params for a in event["attendee"]}
    chair = attendees["mailto:jining@cities.huaihai-hub.invalid"]
    assert chair["ROLE"] == "CHAIR" and chair["CN"] == "济宁市"
    assert [params["ROLE"] for params in attendees.values()].count("CHAIR") == 1
    assert attendees["mailto:linyi@cities.huaihai-hub.invalid"]["PARTSTAT"] == "ACCEPTED"
    assert attendees["mailto:xuzhou@cities.huaihai-hub.invalid"]["RSVP"] == "TRUE"
    assert attendees["mailto:heze@cities.huaihai-hub.invalid"]["ROLE"] == "NON-PARTICIPANT"
    assert str(event["organizer"]) == "mailto:jining@cities.huaihai-hub.invalid"


def test_expanding_in_shanghai_finds_the_meeting_on_its_day(meeting: CalendarMeeting) -> None:
    cal = parse(feed([meeting], name="x"))
    found = recurring_ical_events.of(cal).between(
        datetime(2026, 6, 18, tzinfo=SH), datetime(2026, 6, 19, tzinfo=SH)
    )
    assert [e.decoded("dtstart") for e in found] == [datetime(2026, 6, 18, 9, tzinfo=SH)]
    assert recurring_ical_events.of(cal).at(date(2026, 6, 17)) == []


def test_same_uid_forever_and_sequence_rises_on_change_not_on_answers(meeting: CalendarMeeting) -> None:
    answered = replace(
        meeting,
        invitees=(*meeting.invitees[:2], Invitee("xuzhou", partstat=Partstat.DECLINED), meeting.invitees[3]),
    )
    assert next_sequence(meeting, answered) == 0
    moved = replace(
        meeting, starts_at=meeting.starts_at + timedelta(days=1), ends_at=meeting.ends_at + timedelta(days=1)
    )
    moved = replace(moved, sequence=next_sequence(meeting, moved))
    assert moved.sequence == 1
    relinked = replace(moved, video_link="https://video.jining.example.cn/room/14")
    relinked = replace(relinked, sequence=next_sequence(moved, relinked))
    assert relinked.sequence == 2
    versions = [events(parse(feed([m], name="x")))[0] for m in (meeting, moved, relinked)]
    assert {str(v["uid"]) for v in versions} == {meeting_uid(MEETING_ID)}
    assert [int(v["sequence"]) for v in versions] == [0, 1, 2]
    with pytest.raises(ValueError, match="keeps its public id"):
        next_sequence(meeting, replace(meeting, public_id=ITEM_ID))


def test_request_and_cancel_messages(meeting: CalendarMeeting) -> None:
    now = datetime(2026, 5, 19, 9, 0, 5, tzinfo=SH)
    invitation = parse(request(meeting, now=now))
    assert str(invitation["method"]) == "REQUEST"
    assert events(invitation)[0].decoded("dtstamp") == now.astimezone(UTC)
    cancelled = replace(meeting, status=MeetingStatus.CANCELLED)
    cancelled = replace(cancelled, sequence=next_sequence(meeting, cancelled))
    message = parse(cancel(cancelled, now=now))
    assert str(message["method"]) == "CANCEL"
    (event,) = events(message)
    assert str(event["status"]) == "CANCELLED"
    assert str(event["uid"]) == meeting_uid(MEETING_ID)
    assert int(event["sequence"]) == 1
    # The feed keeps the cancelled meeting, marked so, for subscribers who never get the message.
    (listed,) = events(parse(feed([cancelled], name="x")))
    assert str(listed["status"]) == "CANCELLED"
    with pytest.raises(ValueError, match="only a cancelled meeting"):
        cancel(meeting, now=now)
    with pytest.raises(ValueError, match="announced with `cancel`"):
        request(cancelled, now=now)


def test_action_items_as_vtodo_with_due(meeting: CalendarMeeting) -> None:
    item = CalendarActionItem(
        public_id=ITEM_ID,
        sequence=3,
        title="沂河跨界段堤防巡查",
        owner_city="linyi",
        chair_city="jining",
        due_on=date(2026, 7, 31),
        state=ActionItemState.OPEN,
        updated_at=UPDATED,
        meeting_id=MEETING_ID,
        carried_over=2,
    )
    done = replace(
        item,
        public_id=MEETING_ID,
        state=ActionItemState.CLOSED,
        closed_at=datetime(2026, 7, 30, 17, tzinfo=SH),
    )
    cal = parse(feed([meeting], [item, done], name="x"))
    todo, closed = cal.walk("VTODO")
    assert todo.decoded("due") == date(2026, 7, 31)
    assert str(todo["status"]) == "NEEDS-ACTION"
    assert str(todo["related-to"]) == meeting_uid(MEETING_ID)
    assert "已结转 2 次" in str(todo["summary"])
    assert str(closed["status"]) == "COMPLETED" and int(closed["percent-complete"]) == 100
    assert closed.decoded("completed") == datetime(2026, 7, 30, 9, tzinfo=UTC)
    found = recurring_ical_events.of(cal, components=["VTODO"]).at(date(2026, 7, 31))
    assert str(found[0]["uid"]).startswith("action-item-")


def test_planned_series_expands_to_the_rules_dates() -> None:
    body = ConferenceBody.model_validate_json(SAMPLE_BODY.read_bytes())
    # Five years of meetings, the 13th (June 2026) the first not yet created.
    series = PlannedSeries(BODY_ID, body, from_seq=13, count=10, body_revision=0, updated_at=UPDATED)
    cal = parse(feed([], name="x", planned=series))
    expanded = recurring_ical_events.of(cal).between(
        datetime(2026, 1, 1, tzinfo=SH), datetime(2032, 1, 1, tzinfo=SH)
    )
    starts = [e.decoded("dtstart") for e in expanded]
    assert starts == [planned_start(body, seq) for seq in range(13, 23)]
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(hours=8) for s in starts)
    assert all(str(e["status"]) == "TENTATIVE" for e in expanded)
    assert expanded[0].decoded("dtend") - expanded[0].decoded("dtstart") == timedelta(
        minutes=body.duration_minutes
    )
    later = parse(feed([], name="x", planned=replace(series, from_seq=14, count=9)))
    assert int(events(later)[0]["sequence"]) > int(events(cal)[0]["sequence"])


def test_naive_times_are_refused(meeting: CalendarMeeting) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        feed([replace(meeting, starts_at=datetime(2026, 6, 18, 9))], name="x")


def test_a_feed_rendered_from_kept_components_is_the_same_and_follows_every_change(
    meeting: CalendarMeeting,
) -> None:
    item = CalendarActionItem(
        public_id=ITEM_ID,
        sequence=0,
        title="报送防汛物资清单",
        owner_city="linyi",
        chair_city="jining",
        due_on=date(2026, 7, 1),
        state=ActionItemState.OPEN,
        updated_at=UPDATED,
        meeting_id=MEETING_ID,
    )
    fresh = feed([meeting], [item], name="淮海联席会商", directory=CityDirectory())
    assert feed([meeting], [item], name="淮海联席会商") == fresh
    assert feed([meeting], [item], name="淮海联席会商") == fresh  # from what was kept
    # An answer changes no SEQUENCE, but the feed shows it at once.
    answered = replace(
        meeting, invitees=(*meeting.invitees[:2], Invitee("xuzhou", partstat=Partstat.DECLINED))
    )
    (event,) = events(parse(feed([answered], [item], name="淮海联席会商")))
    partstats = {str(a): a.params["PARTSTAT"] for a in event.get("ATTENDEE")}
    assert partstats["mailto:xuzhou@cities.huaihai-hub.invalid"] == "DECLINED"
    closed = replace(item, state=ActionItemState.CLOSED, closed_at=UPDATED + timedelta(days=3), sequence=1)
    (todo,) = parse(feed([meeting], [closed], name="淮海联席会商")).walk("VTODO")
    assert str(todo["STATUS"]) == "COMPLETED"
