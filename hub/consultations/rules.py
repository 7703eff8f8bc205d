"""The rules of consultations and the regular conference, as pure functions over plain records.

- Rotation: who hosts and who chairs the nth meeting, from the rotation order, the first host and
  the recorded skips and swaps; never typed by hand.
- Schedule: the planned start of the nth meeting from the rhythm, in Asia/Shanghai; when the
  meeting is created (30 days ahead by default) and when agenda submissions close.
- Quorum: whether enough invited cities are represented, with the share as a parameter.
- Resolutions: adopted by consensus, or by the votes cast.
- Minutes: revisions are appended, a save that changes nothing adds none, and signed minutes
  are frozen.
- Assessment: per city and year, meetings invited and attended, agenda items on time, action
  items closed on time.

No database, no clock: callers pass `now` and the records; the services store the results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from zoneinfo import ZoneInfo

from contracts.consultations import Answer, ConferenceBody, DecisionMode, Quorum, Vote
from hub.kernel.errors import Conflict, Forbidden, InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")
# More than half: of the invited cities for a quorum, of the votes cast for or against a resolution.
MAJORITY = Quorum()


def _aware(moment: datetime, name: str = "now") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


# Rotation -----------------------------------------------------------------------------------------


class RotationRole(StrEnum):
    """Which turn a skip or swap changes: hosting, chairing, or both (the usual 轮值城市)."""

    HOST = "host"
    CHAIR = "chair"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Skip:
    """At meeting `seq`, `city` passes its turn (for `reason`); the cities after it move up one."""

    seq: int
    city: str
    reason: str
    role: RotationRole = RotationRole.BOTH


@dataclass(frozen=True, slots=True)
class Swap:
    """At meeting `seq`, `with_city` takes `city`'s turn, and `city` takes `with_city`'s next one."""

    seq: int
    city: str
    with_city: str
    reason: str
    role: RotationRole = RotationRole.BOTH


RotationEvent = Skip | Swap


@dataclass(frozen=True, slots=True)
class Turn:
    """Who hosts and who chairs meeting number `seq` (1 is the body's first meeting)."""

    seq: int
    host: str
    chair: str


def _stream(order: Sequence[str], first: str, events: Iterable[RotationEvent], through_seq: int) -> list[str]:
    """Return the city whose turn each meeting 1..through_seq is, applying the events in order."""
    if first not in order:
        raise InvalidInput(f"the first host {first!r} is not in the rotation order")
    by_seq: dict[int, list[RotationEvent]] = {}
    for event in events:
        if event.seq < 1:
            raise InvalidInput(f"a rotation event names meeting {event.seq}; meetings count from 1")
        if not event.reason.strip():
            raise InvalidInput(f"the rotation change at meeting {event.seq} gives no reason")
        by_seq.setdefault(event.seq, []).append(event)

    start = list(order).index(first)
    cursor = start
    pending: list[str] = []

    def fill(size: int) -> None:
        nonlocal cursor
        while len(pending) < size:
            pending.append(order[cursor % len(order)])
            cursor += 1

    turns = []
    for seq in range(1, through_seq + 1):
        for event in by_seq.get(seq, ()):
            fill(1)
            if event.city != pending[0]:
                raise InvalidInput(
                    f"meeting {seq} is {pending[0]}'s turn, not {event.city}'s; the change cannot apply"
                )
            if isinstance(event, Skip):
                if len(order) == 1:
                    raise InvalidInput("a rotation of one city has nobody to pass the turn to")
                pending.pop(0)
                # An earlier swap may have given the city the next turn too; it cannot host this
                # meeting either way, so the first other city moves up.
                fill(len(order) + 1)
                other = next(n for n, city in enumerate(pending) if city != event.city)
                pending.insert(0, pending.pop(other))
                continue
            if event.with_city == event.city or event.with_city not in order:
                raise InvalidInput(f"{event.with_city!r} cannot take {event.city}'s turn at meeting {seq}")
            # The other city's next turn: within the round ahead, unless earlier swaps moved it on.
            fill(len(order) + 1)
            while event.with_city not in pending[1:]:
                fill(len(pending) + len(order))
            other = pending.index(event.with_city, 1)
            pending[0], pending[other] = pending[other], pending[0]
        fill(1)
        turns.append(pending.pop(0))
    return turns


def rotation(
    order: Sequence[str], first_host: str, events: Iterable[RotationEvent], *, through_seq: int
) -> list[Turn]:
    """Return host and chair of meetings 1..through_seq; by default the host chairs.

    Computed from the start every time: a swap made years ago still owes a turn, so the last
    host alone cannot say who is next.
    """
    if len(set(order)) != len(order) or not order:
        raise InvalidInput("the rotation order lists each city once")
    events = tuple(events)
    host_events = [e for e in events if e.role in (RotationRole.HOST, RotationRole.BOTH)]
    chair_events = [e for e in events if e.role in (RotationRole.CHAIR, RotationRole.BOTH)]
    hosts = _stream(order, first_host, host_events, through_seq)
    chairs = _stream(order, first_host, chair_events, through_seq)
    return [Turn(seq, host, chair) for seq, (host, chair) in enumerate(zip(hosts, chairs, strict=True), 1)]


def next_turns(
    order: Sequence[str],
    first_host: str,
    events: Iterable[RotationEvent],
    *,
    after_seq: int,
    count: int = 10,
) -> list[Turn]:
    """Return the next `count` hosts and chairs after meeting `after_seq` (0 before the first)."""
    return rotation(order, first_host, events, through_seq=after_seq + count)[after_seq:]


# Schedule -----------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """Return the same day of the month `months` later; the day must exist in every month (1..28)."""
    if day.day > 28:
        raise ValueError("the day of the month is 1 to 28, so that every month has it")
    years, month0 = divmod(day.month - 1 + months, 12)
    return day.replace(year=day.year + years, month=month0 + 1)


def planned_start(body: ConferenceBody, seq: int) -> datetime:
    """Return the planned start of meeting `seq` (1 is the first) in Asia/Shanghai.

    The rhythm runs from meeting `body.dates_from_seq`, held on `body.first_meeting_on`; an
    earlier meeting was held under an earlier definition, and its date is the meeting's own.
    """
    if seq < 1:
        raise ValueError("meetings count from 1")
    if seq < body.dates_from_seq:
        raise ValueError(f"meeting {seq} comes before this definition's dates (from {body.dates_from_seq})")
    day = add_months(body.first_meeting_on, (seq - body.dates_from_seq) * body.rhythm_months)
    return datetime.combine(day, body.meeting_time, tzinfo=SHANGHAI)


def agenda_deadline(starts_at: datetime, days: int) -> datetime:
    """Return when agenda submissions close: `days` days before the start, same wall-clock time."""
    return _aware(starts_at, "starts_at").astimezone(SHANGHAI) - timedelta(days=days)


def creation_instant(starts_at: datetime, lead_days: int = 30) -> datetime:
    """Return when the meeting is created and invitations go out: `lead_days` days before it starts."""
    return _aware(starts_at, "starts_at").astimezone(SHANGHAI) - timedelta(days=lead_days)


def submitted_on_time(submitted_at: datetime, starts_at: datetime, days: int) -> bool:
    """Whether an agenda item came in by the deadline."""
    return _aware(submitted_at, "submitted_at") <= agenda_deadline(starts_at, days)


@dataclass(frozen=True, slots=True)
class PlannedMeeting:
    """A regular meeting as the plan foresees it, with the instants its steps are due."""

    seq: int
    starts_at: datetime
    ends_at: datetime
    host: str
    chair: str
    create_at: datetime
    agenda_deadline: datetime


def body_turns(
    body: ConferenceBody, events: Iterable[RotationEvent], *, after_seq: int, count: int = 10
) -> list[Turn]:
    """Return hosts and chairs of the `count` meetings after `after_seq` under the body's definition.

    The rotation runs from meeting `body.rotation_from_seq`, hosted by `body.first_host`; the skips
    and swaps recorded for earlier meetings belong to the rotation before it and are left out.
    """
    base = body.rotation_from_seq - 1
    if after_seq < base:
        raise ValueError(f"meeting {after_seq + 1} comes before this rotation (from {base + 1})")
    later = [replace(e, seq=e.seq - base) for e in events if e.seq > base]
    turns = next_turns(body.rotation_order, body.first_host, later, after_seq=after_seq - base, count=count)
    return [replace(t, seq=t.seq + base) for t in turns]


def plan(
    body: ConferenceBody, events: Iterable[RotationEvent], *, after_seq: int, count: int = 10
) -> list[PlannedMeeting]:
    """Return the next `count` regular meetings after meeting `after_seq`: dates, host, chair, deadlines."""
    turns = body_turns(body, events, after_seq=after_seq, count=count)
    planned = []
    for turn in turns:
        starts_at = planned_start(body, turn.seq)
        planned.append(
            PlannedMeeting(
                seq=turn.seq,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=body.duration_minutes),
                host=turn.host,
                chair=turn.chair,
                create_at=creation_instant(starts_at, body.lead_days),
                agenda_deadline=agenda_deadline(starts_at, body.agenda_deadline_days),
            )
        )
    return planned


def seq_to_create(body: ConferenceBody, now: datetime, *, last_created_seq: int) -> int | None:
    """Return the number of the next meeting whose creation time has come, or None if none has."""
    seq = last_created_seq + 1
    return seq if creation_instant(planned_start(body, seq), body.lead_days) <= _aware(now) else None


# Quorum -------------------------------------------------------------------------------------------


def needed(total: int, rule: Quorum) -> int:
    """Return how many of `total` the rule needs: more than (or at least) the share."""
    share = Fraction(rule.numerator, rule.denominator) * total
    return math.floor(share) + 1 if rule.strictly_more else max(1, math.ceil(share))


@dataclass(frozen=True, slots=True)
class QuorumResult:
    """Whether a quorum is met, and the figures to show beside "quorum not met"."""

    met: bool
    represented: int
    needed: int
    invited: int
    missing: tuple[str, ...]


def quorum(invited: Iterable[str], represented: Iterable[str], rule: Quorum = MAJORITY) -> QuorumResult:
    """Count the invited cities that are represented (accepted, delegated or present) against the rule.

    A city that was not invited does not count towards the quorum, even if it shows up.
    """
    invited_set = set(invited)
    present = invited_set & set(represented)
    need = needed(len(invited_set), rule)
    return QuorumResult(
        met=bool(invited_set) and len(present) >= need,
        represented=len(present),
        needed=need,
        invited=len(invited_set),
        missing=tuple(sorted(invited_set - present)),
    )


def represented_by_answers(answers: Mapping[str, Answer | None]) -> set[str]:
    """Return the cities whose answer says they will be there, themselves or by a delegate."""
    return {city for city, answer in answers.items() if answer is not None and answer.attends}


# Resolutions --------------------------------------------------------------------------------------


class Outcome(StrEnum):
    """What became of a resolution."""

    ADOPTED = "adopted"
    REJECTED = "rejected"


def resolution_outcome(
    mode: DecisionMode,
    votes: Mapping[str, Vote],
    voters: Iterable[str],
    rule: Quorum = MAJORITY,
) -> Outcome:
    """Decide a resolution: consensus adopts; a vote adopts when approvals reach the rule's share.

    Abstentions count for neither side. Only the cities present (`voters`) may vote.
    """
    if mode is DecisionMode.CONSENSUS:
        if votes:
            raise InvalidInput("a resolution adopted by consensus carries no votes")
        return Outcome.ADOPTED
    strangers = sorted(set(votes) - set(voters))
    if strangers:
        raise InvalidInput(f"cities not present cannot vote: {', '.join(strangers)}")
    cast = [vote for vote in votes.values() if vote is not Vote.ABSTAIN]
    approvals = sum(1 for vote in cast if vote is Vote.APPROVE)
    return Outcome.ADOPTED if cast and approvals >= needed(len(cast), rule) else Outcome.REJECTED


# Minutes ------------------------------------------------------------------------------------------


class MinutesSigned(Conflict):
    """The minutes are signed and frozen; nothing about them changes any more."""

    code = "minutes_signed"


class StaleRevision(Conflict):
    """The save was made over a revision that is no longer the latest."""

    code = "stale_revision"


@dataclass(frozen=True, slots=True)
class Revision:
    """One saved version of the minutes: its number, who saved it, when, and the text."""

    number: int
    author: str
    city: str
    at: datetime
    content: str
    public_part: str = ""


@dataclass(frozen=True, slots=True)
class Minutes:
    """The minutes of one meeting: an append-only list of revisions and, once signed, the signature."""

    revisions: tuple[Revision, ...] = ()
    signed_at: datetime | None = None
    signed_by: str | None = None
    signed_revision: int | None = None

    @property
    def latest(self) -> Revision | None:
        """Return the newest revision, or None before the first save."""
        return self.revisions[-1] if self.revisions else None

    @property
    def number(self) -> int:
        """Return the newest revision's number, 0 before the first save."""
        return self.revisions[-1].number if self.revisions else 0

    @property
    def is_signed(self) -> bool:
        """Whether the chair has signed (网上签办), which freezes the minutes."""
        return self.signed_at is not None


@dataclass(frozen=True, slots=True)
class Saved:
    """The minutes after a save, and the revision it added (None when nothing changed)."""

    minutes: Minutes
    revision: Revision | None = field(default=None)


def save_minutes(
    minutes: Minutes,
    *,
    author: str,
    city: str,
    at: datetime,
    content: str,
    public_part: str = "",
    base_revision: int,
) -> Saved:
    """Append a revision, unless nothing changed; refuse any save once signed or over a newer revision."""
    if minutes.is_signed:
        raise MinutesSigned("the minutes are signed and can no longer be edited")
    if base_revision != minutes.number:
        raise StaleRevision(
            f"the minutes were saved as revision {minutes.number} since revision {base_revision} was opened;"
            " reload and apply the changes again",
            details={"latest": minutes.number, "base": base_revision},
        )
    latest = minutes.latest
    if latest is not None and (latest.content, latest.public_part) == (content, public_part):
        return Saved(minutes)
    if latest is None and not content.strip() and not public_part.strip():
        return Saved(minutes)
    if latest is not None and _aware(at, "at") < latest.at:
        raise InvalidInput("a revision cannot be dated before the one it follows")
    revision = Revision(minutes.number + 1, author, city, _aware(at, "at"), content, public_part)
    return Saved(replace(minutes, revisions=(*minutes.revisions, revision)), revision)


def sign_minutes(minutes: Minutes, *, by: str, by_city: str, chair_city: str, at: datetime) -> Minutes:
    """Sign the minutes as the chair; from then on they are frozen."""
    if by_city != chair_city:
        raise Forbidden(f"only the chair ({chair_city}) signs the minutes")
    if minutes.is_signed:
        raise MinutesSigned("the minutes are already signed")
    if minutes.latest is None:
        raise InvalidInput("there are no minutes to sign yet")
    return replace(minutes, signed_at=_aware(at, "at"), signed_by=by, signed_revision=minutes.number)


# Annual assessment --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeetingRecord:
    """A meeting as the assessment needs it: when, who was invited, who attended (roll-call)."""

    starts_at: datetime
    invited: frozenset[str]
    attended: frozenset[str]
    cancelled: bool = False
    exercise: bool = False


@dataclass(frozen=True, slots=True)
class AgendaRecord:
    """An agenda item a city submitted, with the deadline of its meeting."""

    city: str
    submitted_at: datetime
    deadline: datetime


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action item as the assessment needs it: owner, due day, and when it was finally closed."""

    owner_city: str
    due_on: date
    closed_at: datetime | None


def _rate(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


@dataclass(frozen=True, slots=True)
class CityYear:
    """One city's figures for one year, for the annual assessment (S23)."""

    city: str
    year: int
    meetings_invited: int = 0
    meetings_attended: int = 0
    agenda_submitted: int = 0
    agenda_on_time: int = 0
    actions_due: int = 0
    actions_closed_on_time: int = 0
    actions_closed_late: int = 0
    actions_open: int = 0

    @property
    def attendance_rate(self) -> Fraction | None:
        """Return meetings attended over meetings invited; None when not invited to any."""
        return _rate(self.meetings_attended, self.meetings_invited)

    @property
    def agenda_on_time_rate(self) -> Fraction | None:
        """Return agenda items on time over those submitted; None when none was submitted."""
        return _rate(self.agenda_on_time, self.agenda_submitted)

    @property
    def actions_on_time_rate(self) -> Fraction | None:
        """Return action items closed on time over those due in the year; None when none was due."""
        return _rate(self.actions_closed_on_time, self.actions_due)


CSV_COLUMNS = (
    "city",
    "year",
    "meetings_invited",
    "meetings_attended",
    "agenda_submitted",
    "agenda_on_time",
    "actions_due",
    "actions_closed_on_time",
    "actions_closed_late",
    "actions_open",
)


def assessment(
    year: int,
    cities: Iterable[str],
    *,
    meetings: Iterable[MeetingRecord] = (),
    agenda_items: Iterable[AgendaRecord] = (),
    action_items: Iterable[ActionRecord] = (),
    now: datetime,
) -> list[CityYear]:
    """Return each city's figures for `year` (Asia/Shanghai), every city listed even with none.

    Meetings count in the year they start, once held (not cancelled, not a drill's); agenda
    items in the year submitted; action items in the year they are due, judged by their final
    closing: reopened and closed after the due day is late.
    """
    _aware(now)
    counts: dict[str, dict[str, int]] = {city: dict.fromkeys(CSV_COLUMNS[2:], 0) for city in cities}

    def bump(city: str, key: str) -> None:
        if city in counts:
            counts[city][key] += 1

    for meeting in meetings:
        start = _aware(meeting.starts_at, "starts_at")
        if meeting.cancelled or meeting.exercise or start > now or start.astimezone(SHANGHAI).year != year:
            continue
        for city in meeting.invited:
            bump(city, "meetings_invited")
            if city in meeting.attended:
                bump(city, "meetings_attended")
    for item in agenda_items:
        if _aware(item.submitted_at, "submitted_at").astimezone(SHANGHAI).year != year:
            continue
        bump(item.city, "agenda_submitted")
        if item.submitted_at <= item.deadline:
            bump(item.city, "agenda_on_time")
    for action in action_items:
        if action.due_on.year != year:
            continue
        bump(action.owner_city, "actions_due")
        if action.closed_at is None:
            bump(action.owner_city, "actions_open")
        elif _aware(action.closed_at, "closed_at").astimezone(SHANGHAI).date() <= action.due_on:
            bump(action.owner_city, "actions_closed_on_time")
        else:
            bump(action.owner_city, "actions_closed_late")
    return [CityYear(city, year, **figures) for city, figures in counts.items()]


def assessment_rows(figures: Iterable[CityYear]) -> list[dict[str, object]]:
    """Return the figures as rows keyed by `CSV_COLUMNS`, for the CSV export."""
    return [{column: getattr(row, column) for column in CSV_COLUMNS} for row in figures]
