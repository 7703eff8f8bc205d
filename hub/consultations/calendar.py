"""iCalendar (RFC 5545) feeds and iTIP (RFC 5546) messages for meetings and action items.

- A meeting's UID comes from its public id and never changes, whatever else does.
- SEQUENCE rises with every change an attendee must see (`next_sequence`); answers do not raise
  it (RFC 5546 §2.1.4: a REPLY does not change the organizer's copy).
- A cancelled meeting stays in the feeds with STATUS:CANCELLED, and a METHOD:CANCEL message
  tells each invitee (RFC 5546 §3.2.5).
- The chair is an ATTENDEE with ROLE=CHAIR (RFC 5545 §3.2.16); cities are CUTYPE=GROUP.
- Times carry TZID=Asia/Shanghai with its VTIMEZONE; stamps are UTC, as §3.8.7.2 requires.
- Action items may go along as VTODOs whose DUE is the due day (a DATE value: the item is on
  time all that day).

The builders take plain records, not ORM rows, so the feed renders the same from any caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from uuid import UUID
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, TimezoneStandard, Todo, vCalAddress, vRecur, vUri

from contracts.consultations import ActionItemState, ConferenceBody
from hub.consultations.rules import planned_start

SHANGHAI = ZoneInfo("Asia/Shanghai")
TZID = "Asia/Shanghai"
PRODID = "-//Huaihai Hub//Joint meetings//ZH"
UID_DOMAIN = "huaihai-hub"


class MeetingStatus(StrEnum):
    """The STATUS of a meeting's VEVENT (RFC 5545 §3.8.1.11)."""

    TENTATIVE = "TENTATIVE"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class Partstat(StrEnum):
    """An invitee's PARTSTAT for an event (RFC 5545 §3.2.12)."""

    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"
    DELEGATED = "DELEGATED"


class AttendeeRole(StrEnum):
    """An invitee's ROLE (RFC 5545 §3.2.16)."""

    CHAIR = "CHAIR"
    REQUIRED = "REQ-PARTICIPANT"
    OPTIONAL = "OPT-PARTICIPANT"
    OBSERVER = "NON-PARTICIPANT"


@dataclass(frozen=True, slots=True)
class Invitee:
    """A city invited to a meeting, with its role and answer."""

    city: str
    role: AttendeeRole = AttendeeRole.REQUIRED
    partstat: Partstat = Partstat.NEEDS_ACTION


@dataclass(frozen=True, slots=True)
class ExpertInvitee:
    """An expert of a city's registry invited for their speciality (CUTYPE=INDIVIDUAL)."""

    invitation_id: UUID
    name: str
    city: str
    partstat: Partstat = Partstat.NEEDS_ACTION


@dataclass(frozen=True, slots=True)
class CalendarMeeting:
    """A meeting as the calendar shows it; `sequence` is the one the hub stores with the meeting."""

    public_id: UUID
    sequence: int
    title: str
    starts_at: datetime
    ends_at: datetime
    organizer_city: str
    chair_city: str
    invitees: tuple[Invitee, ...]
    updated_at: datetime
    status: MeetingStatus = MeetingStatus.CONFIRMED
    location: str = ""
    video_link: str | None = None
    description: str = ""
    experts: tuple[ExpertInvitee, ...] = ()


@dataclass(frozen=True, slots=True)
class CalendarActionItem:
    """An action item as a VTODO: owner city, due day, state, and the meeting it came from."""

    public_id: UUID
    sequence: int
    title: str
    owner_city: str
    chair_city: str
    due_on: date
    state: ActionItemState
    updated_at: datetime
    meeting_id: UUID | None = None
    closed_at: datetime | None = None
    carried_over: int = 0


@dataclass(frozen=True, slots=True)
class PlannedSeries:
    """The regular meetings not created yet, as one recurring TENTATIVE event.

    `from_seq` is the first meeting not yet created; its SEQUENCE is `from_seq` plus the body's
    own revision, so it rises both when a meeting is created and when the body changes.
    """

    body_id: UUID
    body: ConferenceBody
    from_seq: int
    count: int
    body_revision: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CityDirectory:
    """How a city appears in a calendar: its address (a URI) and its name."""

    names: Mapping[str, str] = field(default_factory=dict)
    domain: str = "cities.huaihai-hub.invalid"
    address: Callable[[str, str], str] | None = None

    def uri(self, city: str) -> str:
        """Return the city's calendar address; a mailto URI is what calendar programs expect."""
        return self.address(city, self.domain) if self.address else f"mailto:{city}@{self.domain}"

    def name(self, city: str) -> str:
        """Return the city's display name, or its slug."""
        return self.names.get(city, city)


def meeting_uid(public_id: UUID) -> str:
    """Return a meeting's UID: from its public id only, so it is the same forever."""
    return f"meeting-{public_id}@{UID_DOMAIN}"


def action_item_uid(public_id: UUID) -> str:
    """Return an action item's UID."""
    return f"action-item-{public_id}@{UID_DOMAIN}"


def series_uid(body_id: UUID) -> str:
    """Return the UID of a conference body's planned series."""
    return f"conference-plan-{body_id}@{UID_DOMAIN}"


def _without_answers(meeting: CalendarMeeting) -> CalendarMeeting:
    invitees = tuple(sorted((replace(i, partstat=Partstat.NEEDS_ACTION) for i in meeting.invitees), key=str))
    experts = tuple(sorted((replace(e, partstat=Partstat.NEEDS_ACTION) for e in meeting.experts), key=str))
    return replace(
        meeting, invitees=invitees, experts=experts, sequence=0, updated_at=datetime.min.replace(tzinfo=UTC)
    )


def next_sequence(before: CalendarMeeting, after: CalendarMeeting) -> int:
    """Return the SEQUENCE `after` is published with: one more than before's on any change but answers."""
    if before.public_id != after.public_id:
        raise ValueError("a meeting keeps its public id (and so its UID) forever")
    return before.sequence + (_without_answers(before) != _without_answers(after))


def _timezone() -> Timezone:
    # China has kept UTC+8 without daylight saving since 1991, so one STANDARD block describes
    # every meeting the hub will hold; RFC 5545 §3.6.5 asks only that the rules cover the dates used.
    tz = Timezone()
    tz.add("tzid", TZID)
    tz.add("x-lic-location", TZID)
    standard = TimezoneStandard()
    standard.add("dtstart", datetime(1991, 9, 15, 0, 0))
    standard.add("tzoffsetfrom", datetime(2000, 1, 1, tzinfo=SHANGHAI).utcoffset())
    standard.add("tzoffsetto", datetime(2000, 1, 1, tzinfo=SHANGHAI).utcoffset())
    standard.add("tzname", "CST")
    tz.add_component(standard)
    return tz


def _serialise(cal: Calendar) -> bytes:
    ical: bytes = cal.to_ical()  # icalendar leaves this method unannotated
    return ical


def _calendar(method: str | None, name: str | None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", TZID)
    cal.add_component(_timezone())
    return cal


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("calendar times must be timezone-aware")
    return moment.astimezone(SHANGHAI)


def _utc(moment: datetime) -> datetime:
    return _local(moment).astimezone(UTC)


def _address(city: str, directory: CityDirectory, **params: str) -> vCalAddress:
    address = vCalAddress(directory.uri(city))
    address.params["CN"] = directory.name(city)
    address.params["CUTYPE"] = "GROUP"
    for key, value in params.items():
        address.params[key.upper().replace("_", "-")] = value
    return address


def _event(meeting: CalendarMeeting, directory: CityDirectory, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", meeting_uid(meeting.public_id))
    event.add("dtstamp", _utc(stamp))
    event.add("last-modified", _utc(meeting.updated_at))
    event.add("sequence", meeting.sequence)
    event.add("summary", meeting.title)
    event.add("dtstart", _local(meeting.starts_at))
    event.add("dtend", _local(meeting.ends_at))
    event.add("status", meeting.status.value)
    description = meeting.description
    if meeting.location:
        event.add("location", meeting.location)
    if meeting.video_link:
        # RFC 7986 §5.11; the link is in the description too, for programs that ignore CONFERENCE.
        event.add("conference", vUri(meeting.video_link), parameters={"VALUE": "URI", "FEATURE": "VIDEO"})
        description = f"{description}\n\n视频会商 Video: {meeting.video_link}".strip()
    if description:
        event.add("description", description)
    event.add("organizer", _address(meeting.organizer_city, directory))
    event.add(
        "attendee",
        _address(
            meeting.chair_city, directory, role=AttendeeRole.CHAIR.value, partstat=Partstat.ACCEPTED.value
        ),
    )
    for invitee in meeting.invitees:
        if invitee.city == meeting.chair_city:
            continue
        params = {"role": invitee.role.value, "partstat": invitee.partstat.value}
        if invitee.partstat is Partstat.NEEDS_ACTION and invitee.role is not AttendeeRole.OBSERVER:
            params["rsvp"] = "TRUE"
        event.add("attendee", _address(invitee.city, directory, **params))
    for expert in meeting.experts:
        address = vCalAddress(f"mailto:expert-{expert.invitation_id}@{directory.domain}")
        address.params["CN"] = expert.name
        address.params["CUTYPE"] = "INDIVIDUAL"
        address.params["ROLE"] = AttendeeRole.OPTIONAL.value
        address.params["PARTSTAT"] = expert.partstat.value
        # The expert's city relays the invitation and the answer.
        address.params["SENT-BY"] = directory.uri(expert.city)
        if expert.partstat is Partstat.NEEDS_ACTION:
            address.params["RSVP"] = "TRUE"
        event.add("attendee", address)
    return event


def _todo(item: CalendarActionItem, directory: CityDirectory) -> Todo:
    todo = Todo()
    todo.add("uid", action_item_uid(item.public_id))
    todo.add("dtstamp", _utc(item.updated_at))
    todo.add("last-modified", _utc(item.updated_at))
    todo.add("sequence", item.sequence)
    summary = f"{item.title}（已结转 {item.carried_over} 次）" if item.carried_over else item.title
    todo.add("summary", summary)
    todo.add("due", item.due_on)
    todo.add("categories", ["督办事项"])
    todo.add("organizer", _address(item.chair_city, directory))
    todo.add("attendee", _address(item.owner_city, directory, role=AttendeeRole.REQUIRED.value))
    if item.meeting_id is not None:
        todo.add("related-to", meeting_uid(item.meeting_id))
    if item.state is ActionItemState.CLOSED:
        todo.add("status", "COMPLETED")
        todo.add("percent-complete", 100)
        if item.closed_at is not None:
            todo.add("completed", _utc(item.closed_at))
    else:
        todo.add("status", "NEEDS-ACTION")
    return todo


def _series(plan: PlannedSeries, directory: CityDirectory) -> Event:
    body = plan.body
    start = planned_start(body, plan.from_seq)
    event = Event()
    event.add("uid", series_uid(plan.body_id))
    event.add("dtstamp", _utc(plan.updated_at))
    event.add("sequence", plan.from_seq + plan.body_revision)
    event.add("summary", f"{body.name}（计划）")
    event.add("dtstart", start)
    event.add("duration", timedelta(minutes=body.duration_minutes))
    event.add("rrule", vRecur(freq="MONTHLY", interval=body.rhythm_months, count=plan.count))
    event.add("status", MeetingStatus.TENTATIVE.value)
    event.add("description", "计划会期；每次会议提前创建并发出邀请。Planned: each meeting is created ahead.")
    for city in body.member_cities:
        event.add("attendee", _address(city, directory, role=AttendeeRole.REQUIRED.value))
    return event


def feed(
    meetings: Iterable[CalendarMeeting],
    action_items: Iterable[CalendarActionItem] = (),
    *,
    name: str,
    directory: CityDirectory | None = None,
    planned: PlannedSeries | None = None,
) -> bytes:
    """Render a subscription feed: every meeting (cancelled ones marked so), optional VTODOs and plan."""
    cal = _calendar(None, name)
    if directory is not None:
        for meeting in meetings:
            cal.add_component(_event(meeting, directory, meeting.updated_at))
        if planned is not None:
            cal.add_component(_series(planned, directory))
        for item in action_items:
            cal.add_component(_todo(item, directory))
        return _serialise(cal)
    # With the hub's own directory each component depends on its record alone, so a component
    # rendered once is kept and reused until the record changes (a new record is a new key).
    # Rendering is mostly icalendar's line folding; a feed polled again renders nothing twice.
    if planned is not None:
        cal.add_component(_series(planned, CityDirectory()))
    head = _serialise(cal)
    end = b"END:VCALENDAR\r\n"
    if not head.endswith(end):
        raise AssertionError("icalendar ended the calendar unexpectedly")
    parts = [head[: -len(end)]]
    parts.extend(_rendered_event(meeting) for meeting in meetings)
    parts.extend(_rendered_todo(item) for item in action_items)
    parts.append(end)
    return b"".join(parts)


RENDERED_CACHE = 8_192
"""How many rendered meetings (and as many action items) a process keeps, about 2 KiB each."""


@lru_cache(maxsize=RENDERED_CACHE)
def _rendered_event(meeting: CalendarMeeting) -> bytes:
    rendered: bytes = _event(meeting, CityDirectory(), meeting.updated_at).to_ical()
    return rendered


@lru_cache(maxsize=RENDERED_CACHE)
def _rendered_todo(item: CalendarActionItem) -> bytes:
    rendered: bytes = _todo(item, CityDirectory()).to_ical()
    return rendered


def request(meeting: CalendarMeeting, *, now: datetime, directory: CityDirectory | None = None) -> bytes:
    """Render the METHOD:REQUEST message that invites, or updates, every invitee."""
    if meeting.status is MeetingStatus.CANCELLED:
        raise ValueError("a cancelled meeting is announced with `cancel`, not `request`")
    cal = _calendar("REQUEST", None)
    cal.add_component(_event(meeting, directory or CityDirectory(), now))
    return _serialise(cal)


def cancel(meeting: CalendarMeeting, *, now: datetime, directory: CityDirectory | None = None) -> bytes:
    """Render the METHOD:CANCEL message for a cancelled meeting (its SEQUENCE already raised)."""
    if meeting.status is not MeetingStatus.CANCELLED:
        raise ValueError("only a cancelled meeting is announced with METHOD:CANCEL")
    cal = _calendar("CANCEL", None)
    cal.add_component(_event(meeting, directory or CityDirectory(), now))
    return _serialise(cal)
