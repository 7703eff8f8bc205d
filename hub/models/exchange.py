"""Information exchange: partner platforms and their feeds, bulletins with receipts, verification
requests (核报) and daily reports (日报告/零报告)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import db
from hub.models.city import City
from hub.models.types import UTCDateTime, utcnow


class PartnerPlatform(db.Model):
    """A city's own emergency platform that the hub syncs with over HTTP."""

    __tablename__ = "partner_platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), unique=True)
    base_url: Mapped[str] = mapped_column(String(300))
    # The token the platform issued to the hub. It must be presented, so it cannot be stored hashed.
    outbound_token: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_interval_seconds: Mapped[int] = mapped_column(Integer, default=60)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    city: Mapped[City] = relationship(lazy="joined")


class FeedState(db.Model):
    """Where the hub stands with one feed of one platform, and how the last sync went."""

    __tablename__ = "feed_states"
    __table_args__ = (UniqueConstraint("city_id", "feed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    feed: Mapped[str] = mapped_column(String(16))  # incidents, warnings, resources
    cursor: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_run_records: Mapped[int] = mapped_column(Integer, default=0)
    newest_item_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    city: Mapped[City] = relationship(lazy="joined")


class PartnerRecord(db.Model):
    """One item of a partner feed (an incident, warning or resource), kept as the platform sent it."""

    __tablename__ = "partner_records"
    __table_args__ = (UniqueConstraint("city_id", "feed", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    feed: Mapped[str] = mapped_column(String(16), index=True)
    external_id: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, object]] = mapped_column(JSON)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    city: Mapped[City] = relationship(lazy="joined")


class Bulletin(db.Model):
    """A bulletin (信息通报) or warning (预警) issued by one city to others."""

    __tablename__ = "bulletins"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))  # bulletin or warning
    issuing_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    colour: Mapped[str | None] = mapped_column(String(8), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    area: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(16))  # public or restricted
    receipt_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="hub")  # hub, cap, partner

    issuing_city: Mapped[City] = relationship(lazy="joined")
    recipients: Mapped[list[BulletinRecipient]] = relationship(
        back_populates="bulletin", order_by=lambda: BulletinRecipient.city_id
    )


class BulletinRecipient(db.Model):
    """One addressed city of a bulletin: the delivery to its platform and its receipt (回执)."""

    __tablename__ = "bulletin_recipients"
    __table_args__ = (UniqueConstraint("bulletin_id", "city_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    platform_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When the receipt was passed on to the issuing city's own platform.
    receipt_forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    bulletin: Mapped[Bulletin] = relationship(back_populates="recipients")
    city: Mapped[City] = relationship(lazy="joined")


class VerificationRequest(db.Model):
    """A request (核报) from one city to another to verify an incident, answered by a deadline."""

    __tablename__ = "verification_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    from_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    to_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True)
    subject: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    from_city: Mapped[City] = relationship(foreign_keys=[from_city_id], lazy="joined")
    to_city: Mapped[City] = relationship(foreign_keys=[to_city_id], lazy="joined")


class DailyReport(db.Model):
    """A city's report for one day (日报告), or its zero report (零报告) when nothing happened."""

    __tablename__ = "daily_reports"
    __table_args__ = (UniqueConstraint("city_id", "report_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    report_date: Mapped[date] = mapped_column(Date, index=True)  # the day in Asia/Shanghai
    zero: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_by: Mapped[str] = mapped_column(String(64))
    on_time: Mapped[bool] = mapped_column(Boolean, default=True)

    city: Mapped[City] = relationship(lazy="joined")


class Reminder(db.Model):
    """A reminder the hub sent a city about something it owes (a receipt, an answer, a report)."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("kind", "subject_id", "city_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # receipt, verification, daily_report
    subject_id: Mapped[int] = mapped_column(Integer)  # recipient row, request or day ordinal
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # reminded, flagged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)

    city: Mapped[City] = relationship(lazy="joined")
