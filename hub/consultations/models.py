"""Meetings (consultations and the regular conference), their invitations, minutes and decisions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow


class ConferenceBodyRow(Model):
    """The standing joint conference: its definition (a `ConferenceBody` contract) and progress."""

    __tablename__ = "conference_bodies"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    definition: Mapped[dict[str, object]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # raised on every change, for the feed
    last_created_seq: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    rotation_events: Mapped[list[RotationEventRow]] = relationship(
        back_populates="body", order_by=lambda: RotationEventRow.id
    )


class RotationEventRow(Model):
    """A recorded skip or swap of the rotation, with its reason; never changed."""

    __tablename__ = "conference_rotation_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    body_id: Mapped[int] = mapped_column(ForeignKey("conference_bodies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # skip or swap
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))  # host, chair or both
    city: Mapped[str] = mapped_column(String(32))
    with_city: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(100))

    body: Mapped[ConferenceBodyRow] = relationship(back_populates="rotation_events")


class Meeting(Model):
    """A consultation (会商) or a meeting of the regular conference (联席会议)."""

    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("body_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))  # consultation, conference, extraordinary
    # proposed -> called -> opened -> closed; or cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True, index=True)
    body_id: Mapped[int | None] = mapped_column(ForeignKey("conference_bodies.id"), nullable=True)
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(200), default="")
    video_link: Mapped[str | None] = mapped_column(String(500), nullable=True)
    organizer_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    chair_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    host_city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True)
    quorum: Mapped[dict[str, object]] = mapped_column(JSON)  # a `Quorum` contract
    quorum_met: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    quorum_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expert_specialities: Mapped[list[str]] = mapped_column(JSON, default=list)
    agenda_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    agenda_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # iCalendar SEQUENCE
    signed_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The bulletins that carried the signed minutes to the members, and their public part to all.
    minutes_bulletin_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    public_bulletin_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organizer_city: Mapped[City] = relationship(foreign_keys=[organizer_city_id], lazy="joined")
    chair_city: Mapped[City] = relationship(foreign_keys=[chair_city_id], lazy="joined")
    host_city: Mapped[City | None] = relationship(foreign_keys=[host_city_id])
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="meeting", order_by=lambda: Invitation.city_id
    )
    revisions: Mapped[list[MinutesRevisionRow]] = relationship(
        back_populates="meeting", order_by=lambda: MinutesRevisionRow.number
    )
    resolutions: Mapped[list[ResolutionRow]] = relationship(
        back_populates="meeting", order_by=lambda: ResolutionRow.number
    )
    agenda_items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting", order_by=lambda: AgendaItem.id
    )
    attendance: Mapped[list[Attendance]] = relationship(
        back_populates="meeting", order_by=lambda: Attendance.city_id
    )
    experts: Mapped[list[ExpertInvitation]] = relationship(
        back_populates="meeting", order_by=lambda: ExpertInvitation.id
    )


class PlatformDelivery:
    """Where the invitation stands on the invited city's own platform (the partner pipeline).

    `platform_sequence` is the meeting's SEQUENCE the platform last took (REQUEST, or CANCEL once
    the meeting is cancelled); the invitation is owed to the platform while it differs from the
    meeting's. A city without a platform takes it in the hub: `platform_ref` stays empty.
    """

    platform_sequence: Mapped[int | None] = mapped_column(Integer, nullable=True)
    platform_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    platform_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    platform_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Invitation(PlatformDelivery, Model):
    """A city invited to a meeting, the delivery to its desk and platform, and its tracked answer."""

    __tablename__ = "meeting_invitations"
    __table_args__ = (UniqueConstraint("meeting_id", "city_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The invitation's id on the wire: the same for every update and the cancellation.
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # chair, affected, neighbour, member, invited
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delegate_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    meeting: Mapped[Meeting] = relationship(back_populates="invitations")
    city: Mapped[City] = relationship(lazy="joined")


class ExpertInvitation(PlatformDelivery, Model):
    """An expert of the mutual-aid registry invited for their speciality, with a tracked answer.

    The expert belongs to a city's registry; the invitation reaches that city's desk and platform,
    and the city's duty officers pass on the expert's answer. Name and contact are kept as they
    were at the invitation, so the meeting's record does not change when the registry does.
    """

    __tablename__ = "meeting_expert_invitations"
    __table_args__ = (UniqueConstraint("meeting_id", "resource_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    # The registry entry's public id (the mutual-aid capability owns the row).
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    speciality: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answer: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delegate_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    meeting: Mapped[Meeting] = relationship(back_populates="experts")
    city: Mapped[City] = relationship(lazy="joined")


class Attendance(Model):
    """The roll-call: a city was there (itself or by a delegate)."""

    __tablename__ = "meeting_attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "city_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(100))

    meeting: Mapped[Meeting] = relationship(back_populates="attendance")
    city: Mapped[City] = relationship(lazy="joined")


class AgendaItem(Model):
    """An item on a meeting's agenda: submitted by a city, or carried over from an open action item."""

    __tablename__ = "meeting_agenda_items"
    __table_args__ = (UniqueConstraint("meeting_id", "action_item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action_item_id: Mapped[int | None] = mapped_column(ForeignKey("action_items.id"), nullable=True)
    carried_over: Mapped[int] = mapped_column(Integer, default=0)

    meeting: Mapped[Meeting] = relationship(back_populates="agenda_items")
    city: Mapped[City] = relationship(lazy="joined")


class MinutesRevisionRow(Model):
    """One save of the minutes; appended, never changed."""

    __tablename__ = "meeting_minutes_revisions"
    __table_args__ = (UniqueConstraint("meeting_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(100))
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    content: Mapped[str] = mapped_column(Text)
    public_part: Mapped[str] = mapped_column(Text, default="")

    meeting: Mapped[Meeting] = relationship(back_populates="revisions")
    city: Mapped[City] = relationship(lazy="joined")


class ResolutionRow(Model):
    """A resolution (决议): how it was decided, the votes and the outcome."""

    __tablename__ = "meeting_resolutions"
    __table_args__ = (UniqueConstraint("meeting_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    decision_mode: Mapped[str] = mapped_column(String(16))
    votes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(16))
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(100))

    meeting: Mapped[Meeting] = relationship(back_populates="resolutions")
