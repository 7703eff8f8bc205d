"""Answers of the consultations API: meetings with their invitations, and what each write returns."""

from __future__ import annotations

import uuid
from typing import Literal

from contracts.consultations import ActionItem, Answer, MeetingKind
from web.api.models import Out, StoredTime

MeetingStatus = Literal["proposed", "called", "opened", "closed", "cancelled"]


class QuorumOut(Out):
    """Whether enough invited cities are represented now, with the figures."""

    met: bool
    represented: int
    needed: int


class InvitationOut(Out):
    """An invited city, the delivery to its desk and its answer."""

    city: str
    delivered_at: StoredTime | None
    answer: Answer | None
    delegate_name: str | None
    answered_at: StoredTime | None
    reminded: bool
    # The iCalendar SEQUENCE the city's own platform last took (None: not yet, or no platform).
    platform_sequence: int | None = None
    platform_delivered_at: StoredTime | None = None


class ExpertInvitationOut(Out):
    """An expert of a city's registry invited for their speciality, and the answer relayed for them."""

    id: uuid.UUID
    resource_id: uuid.UUID
    city: str
    speciality: str
    name: str
    delivered_at: StoredTime | None
    answer: Answer | None
    delegate_name: str | None
    answered_at: StoredTime | None
    platform_sequence: int | None = None
    platform_delivered_at: StoredTime | None = None


class MeetingOut(Out):
    """A consultation or a meeting of the regular conference, with its invitations and answers."""

    id: uuid.UUID
    kind: MeetingKind
    status: MeetingStatus
    title: str
    starts_at: StoredTime
    ends_at: StoredTime
    video_link: str | None
    organizer_city: str
    chair_city: str
    sequence: int
    quorum: QuorumOut
    quorum_met_at_start: bool | None
    signed_revision: int | None
    # The bulletin that carried the signed minutes to the members (its receipts), and the public one.
    minutes_bulletin_id: uuid.UUID | None = None
    public_bulletin_id: uuid.UUID | None = None
    invitations: list[InvitationOut]
    experts: list[ExpertInvitationOut]


class MeetingList(Out):
    """The meetings the caller's city takes part in."""

    items: list[MeetingOut]


class AnswerOut(Out):
    """The caller's city's answer as recorded."""

    city: str
    answer: Answer | None
    delegate_name: str | None


class ExpertAnswerOut(Out):
    """An expert's answer as recorded."""

    id: uuid.UUID
    name: str
    answer: Answer | None
    delegate_name: str | None


class AgendaItemOut(Out):
    """An agenda item as submitted."""

    title: str
    submitted_at: StoredTime


class AttendanceOut(Out):
    """The cities recorded present at the roll-call."""

    present: list[str]


class MinutesSaved(Out):
    """The revision a save of the minutes added."""

    revision: int
    author: str
    at: StoredTime


class MinutesUnchanged(Out):
    """A save that changed nothing: no revision was added."""

    revision: None


class ResolutionOut(Out):
    """A resolution as recorded, with the action items it opened."""

    number: int
    outcome: Literal["adopted", "rejected"]
    action_items: list[ActionItem]
