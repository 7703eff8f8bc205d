"""Joint consultations (联席会商) and the regular joint conference (联席会议), as clients post them.

What crosses a boundary: a call for a consultation, a city's answer to an invitation, an agenda
item, a save of the minutes, a resolution (决议) with the action items (督办事项) it opens, the
updates an owner city makes to an action item, and the standing conference body's own data.

The city that acts is never in the payload: it is the actor's city, known from the login or the
bearer token, so a coordinator cannot speak for another city by writing its slug.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from contracts.common import CitySlug, XmlChars
from contracts.incidents import Description, ExerciseFlag, Location, Title


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _distinct(items: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse an entry that is listed twice."""
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ValueError(f"{item!r} is listed more than once")
        seen.add(item)
    return items


Cities = Annotated[
    tuple[CitySlug, ...],
    Field(min_length=1, max_length=50, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]
"""One or more distinct member cities; the region has ten, the limit leaves room to grow."""

Speciality = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), XmlChars]
"""An expert's field as the mutual-aid registry names it ("防汛抗旱", "危化品")."""

# Consultations are video sessions (the plan's 视频调度); duty rooms join through a web link or
# the dispatch system's SIP address, so both are accepted and nothing else.
VideoLink = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^(https?|sips?):\S+$")
]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), XmlChars]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000), XmlChars]
RequiredNote = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000), XmlChars
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), XmlChars]
# A document reference is an attachment id or a link; the hub stores the file, not the payload.
DocumentRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), XmlChars]


class MeetingKind(StrEnum):
    """Why a meeting is held."""

    CONSULTATION = "consultation"
    CONFERENCE = "conference"
    EXTRAORDINARY = "extraordinary"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name duty officers use."""
        return {"consultation": "会商", "conference": "联席会议", "extraordinary": "临时会议"}[self.value]


class Answer(StrEnum):
    """A city's answer to an invitation; a delegate attends in its name."""

    ACCEPT = "accept"
    DECLINE = "decline"
    DELEGATE = "delegate"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the answer."""
        return {"accept": "参加", "decline": "不参加", "delegate": "委派参加"}[self.value]

    @property
    def partstat(self) -> str:
        """Return the iCalendar PARTSTAT the answer stands for (RFC 5545 §3.2.12)."""
        return {"accept": "ACCEPTED", "decline": "DECLINED", "delegate": "DELEGATED"}[self.value]

    @property
    def attends(self) -> bool:
        """Whether the city will be represented: by its own people or by a delegate."""
        return self is not Answer.DECLINE


class DecisionMode(StrEnum):
    """How a resolution was decided."""

    CONSENSUS = "consensus"
    VOTE = "vote"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the mode."""
        return {"consensus": "协商一致", "vote": "表决"}[self.value]


class Vote(StrEnum):
    """One city's vote on a resolution."""

    APPROVE = "approve"
    REJECT = "reject"
    ABSTAIN = "abstain"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the vote."""
        return {"approve": "赞成", "reject": "反对", "abstain": "弃权"}[self.value]


class ActionItemState(StrEnum):
    """Where an action item stands; "overdue" is not a state but its due date read against now."""

    OPEN = "open"
    CLOSED = "closed"
    REOPENED = "reopened"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the state."""
        return {"open": "办理中", "closed": "已办结", "reopened": "重新办理"}[self.value]

    @property
    def is_open(self) -> bool:
        """Whether the owner city still has to act."""
        return self is not ActionItemState.CLOSED


class ConsultationCall(_Contract):
    """What a coordinator posts, or the incident rule proposes, to call a consultation (会商)."""

    schema_version: Literal[1] = 1
    incident_id: UUID | None = None
    title: Title
    starts_at: AwareDatetime
    duration_minutes: int = Field(60, ge=10, le=24 * 60)
    location: Location = ""
    video_link: VideoLink | None = None
    invited_cities: Cities
    expert_specialities: Annotated[
        tuple[Speciality, ...], Field(max_length=20), AfterValidator(_distinct)
    ] = ()
    exercise: ExerciseFlag = False


class InvitationAnswer(_Contract):
    """A city's answer to its invitation: accept, decline, or delegate to a named person."""

    schema_version: Literal[1] = 1
    answer: Answer
    delegate_name: PersonName | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _delegate_named_only_when_delegating(self) -> Self:
        """Refuse a delegation without a delegate, and a delegate on any other answer."""
        if self.answer is Answer.DELEGATE and self.delegate_name is None:
            raise ValueError("a delegated answer names the delegate (delegate_name)")
        if self.answer is not Answer.DELEGATE and self.delegate_name is not None:
            raise ValueError("delegate_name is given only when the answer is 'delegate'")
        return self


class AttendanceRoll(_Contract):
    """The roll-call the chair records: the invited cities that are present."""

    schema_version: Literal[1] = 1
    present: Annotated[tuple[CitySlug, ...], Field(max_length=50)]


class AgendaItemSubmission(_Contract):
    """An agenda item a member city proposes before the agenda deadline."""

    schema_version: Literal[1] = 1
    title: Title
    summary: Description = ""
    incident_id: UUID | None = None
    duration_minutes: int | None = Field(None, ge=5, le=240)


class MinutesRevision(_Contract):
    """One save of the minutes (会议纪要); every save that changes something adds a revision.

    `base_revision` is the revision the editor started from (0 for the first), so a save made
    over someone else's newer revision is refused instead of silently replacing it.
    """

    schema_version: Literal[1] = 1
    base_revision: int = Field(ge=0)
    content: str = Field(max_length=200_000)
    # The part that may be published as a bulletin or CAP (S12 "及时对外发布"); the rest is
    # restricted to member cities.
    public_part: str = Field("", max_length=20_000)


class CityVote(_Contract):
    """One city's vote."""

    city: CitySlug
    vote: Vote


class ActionItemCreate(_Contract):
    """An action item (督办事项) opened by a resolution or a drill's corrective action.

    One owner city and one due date: "only ONE person assigned a task and deadline".
    `due_on` is a calendar day in Asia/Shanghai; the item is on time when closed that day or before.
    """

    schema_version: Literal[1] = 1
    owner_city: CitySlug
    title: Title
    detail: Description = ""
    due_on: date


class Resolution(_Contract):
    """A resolution (决议) adopted by consensus or put to the cities' votes."""

    schema_version: Literal[1] = 1
    text: Text
    decision_mode: DecisionMode
    votes: Annotated[tuple[CityVote, ...], Field(max_length=50)] = ()
    follow_up: bool = False
    action_items: Annotated[tuple[ActionItemCreate, ...], Field(max_length=50)] = ()

    @model_validator(mode="after")
    def _votes_match_mode_and_follow_up_has_owners(self) -> Self:
        """Refuse votes on a consensus, a vote without votes, and follow-up without an owner."""
        cities = [vote.city for vote in self.votes]
        if len(set(cities)) != len(cities):
            raise ValueError("a city votes once")
        if self.decision_mode is DecisionMode.CONSENSUS and self.votes:
            raise ValueError("a resolution adopted by consensus carries no votes")
        if self.decision_mode is DecisionMode.VOTE and not self.votes:
            raise ValueError("a resolution put to the vote carries the cities' votes")
        if self.follow_up and not self.action_items:
            raise ValueError("a resolution that asks for follow-up opens at least one action item")
        if self.action_items and not self.follow_up:
            raise ValueError("action items belong to a resolution marked follow_up")
        return self


class Evidence(_Contract):
    """What shows an action item is done: a note and, where there is one, documents."""

    note: RequiredNote
    documents: Annotated[tuple[DocumentRef, ...], Field(max_length=20)] = ()


class ActionItemProgress(_Contract):
    """A progress note the owner city adds to an open action item."""

    schema_version: Literal[1] = 1
    note: RequiredNote


class ActionItemClose(_Contract):
    """The owner city closes an action item; evidence is required."""

    schema_version: Literal[1] = 1
    evidence: Evidence


class ActionItemReopen(_Contract):
    """The chair reopens a closed action item, with a reason and optionally a new due date."""

    schema_version: Literal[1] = 1
    reason: RequiredNote
    due_on: date | None = None


class ActionItem(_Contract):
    """An action item as the hub shows and exports it."""

    schema_version: Literal[1] = 1
    id: UUID
    owner_city: CitySlug
    title: Title
    detail: Description = ""
    due_on: date
    state: ActionItemState
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    evidence: Evidence | None = None
    carried_over: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _closed_with_evidence(self) -> Self:
        """Refuse a closed item without its closing time and evidence."""
        if self.state is ActionItemState.CLOSED and (self.closed_at is None or self.evidence is None):
            raise ValueError("a closed action item has closed_at and evidence")
        return self


class Quorum(_Contract):
    """The quorum rule: the share of invited member cities that must be represented.

    The default, more than 1/2, is a simple majority; "at least 2/3" is (2, 3, strictly_more=False).
    """

    numerator: int = Field(1, ge=0)
    denominator: int = Field(2, ge=1)
    strictly_more: bool = True

    @model_validator(mode="after")
    def _share_at_most_one(self) -> Self:
        """Refuse a share above the whole, which no meeting could reach."""
        if self.numerator > self.denominator:
            raise ValueError("the quorum share is at most 1 (numerator <= denominator)")
        if self.strictly_more and self.numerator == self.denominator:
            raise ValueError("'more than all' can never be met; use strictly_more=false")
        return self


class ConferenceBody(_Contract):
    """The standing joint conference: members, rotation of host and chair, rhythm, deadlines.

    `first_host` hosts meeting number `rotation_from_seq` and the rotation runs on from there;
    meeting number `dates_from_seq` is held on `first_meeting_on` and the rhythm runs on from
    there. Both are 1 for a body as first set up; an edit of the definition moves them to the
    first meeting not created yet, so the meetings held keep the hosts and dates they had.
    """

    schema_version: Literal[1] = 1
    name: Title
    member_cities: Cities
    rotation_order: Cities
    first_host: CitySlug
    first_meeting_on: date
    rotation_from_seq: int = Field(1, ge=1)
    dates_from_seq: int = Field(1, ge=1)
    meeting_time: time = time(9, 0)
    duration_minutes: int = Field(180, ge=30, le=24 * 60)
    rhythm_months: int = Field(6, ge=1, le=24)
    agenda_deadline_days: int = Field(7, ge=1, le=60)
    lead_days: int = Field(30, ge=1, le=180)
    quorum: Quorum = Quorum()

    @model_validator(mode="after")
    def _rotation_covers_the_members(self) -> Self:
        """Refuse a rotation that leaves a member out or names a stranger, and awkward dates."""
        if set(self.rotation_order) != set(self.member_cities):
            raise ValueError("rotation_order lists every member city once, and no other city")
        if self.first_host not in self.rotation_order:
            raise ValueError("first_host is one of the rotation's cities")
        # RFC 5545 RRULE skips months without the day (a 31st every six months misses some),
        # while a planner would clamp it; days up to the 28th exist in every month, so the
        # feed's RRULE and the hub's own dates always agree.
        if self.first_meeting_on.day > 28:
            raise ValueError("first_meeting_on falls on day 1 to 28 of a month, so every month has it")
        if self.meeting_time.tzinfo is not None:
            raise ValueError("meeting_time is a wall-clock time in Asia/Shanghai, without an offset")
        return self
