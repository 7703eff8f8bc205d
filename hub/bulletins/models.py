"""Bulletins and warnings, and each addressed city's delivery and receipt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City, User
from hub.kernel.types import UTCDateTime, utcnow


class Bulletin(Model):
    """A bulletin (信息通报) or warning (预警) issued by one city to others."""

    __tablename__ = "bulletins"
    # A partner retrying a CAP post after a timeout must not issue the warning twice: a CAP
    # message is the same message when its sender, identifier and sent agree (CAP 1.2, 3.2.1).
    __table_args__ = (UniqueConstraint("cap_sender", "cap_identifier", "cap_sent", name="uq_bulletins_cap"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    kind: Mapped[Literal["bulletin", "warning"]] = mapped_column(String(16))
    issuing_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    colour: Mapped[str | None] = mapped_column(String(8), nullable=True)
    category: Mapped[str] = mapped_column(String(32))
    area: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    scope: Mapped[Literal["public", "restricted", "private"]] = mapped_column(String(16))
    receipt_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    # The drill that sent an exercise bulletin (its public id), named in the CAP <note>.
    exercise_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16), default="hub")  # hub, cap, partner
    cap_sender: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cap_identifier: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cap_sent: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The CAP <addresses> the alert came with, written back when the warning leaves the hub.
    cap_addresses: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The incident the bulletin is about, if any: it then shows in that incident's timeline.
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True, index=True)

    issuing_city: Mapped[City] = relationship(lazy="joined")
    issued_by: Mapped[User | None] = relationship()
    recipients: Mapped[list[BulletinRecipient]] = relationship(
        back_populates="bulletin", order_by=lambda: BulletinRecipient.city_id
    )


class BulletinRecipient(Model):
    """One addressed city of a bulletin: the delivery to its platform and its receipt (回执).

    `delivered_at` is when the city's platform accepted it (平台已接收): a machine's answer.
    `receipt_at` is when a person of the city signed it (签收), on the hub's desk (`signed_via`
    "hub") or on the city's own platform, which passed the signature on ("platform"). Only the
    signature settles the item on the city's desk; "late" is about the person.
    """

    __tablename__ = "bulletin_recipients"
    __table_args__ = (
        UniqueConstraint("bulletin_id", "city_id"),
        # What the desks show, and their change detector reads: the receipts still owed.
        Index(
            "ix_bulletin_recipients_unsigned",
            "city_id",
            sqlite_where=text("receipt_at IS NULL"),
            postgresql_where=text("receipt_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    platform_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signed_via: Mapped[Literal["hub", "platform"] | None] = mapped_column(String(16), nullable=True)
    # When the receipt was passed on to the issuing city's own platform.
    receipt_forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Rounds the scheduler asked again, when it may ask next, and when it stopped asking (the
    # cap was reached or the platform refused for good): the issuer then sees 未送达.
    redeliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    given_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the platform that had the bulletin accepted its cancellation.
    cancel_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    bulletin: Mapped[Bulletin] = relationship(back_populates="recipients")
    city: Mapped[City] = relationship(lazy="joined")


class BulletinCapMessage(Model):
    """A CAP Update or Cancel applied to a bulletin: kept so the same message again is known, and
    so a later message may name it in its <references>."""

    __tablename__ = "bulletin_cap_messages"
    __table_args__ = (
        UniqueConstraint(
            "bulletin_id", "cap_sender", "cap_identifier", "cap_sent", name="uq_bulletin_cap_messages"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bulletin_id: Mapped[int] = mapped_column(ForeignKey("bulletins.id", ondelete="CASCADE"), index=True)
    msg_type: Mapped[str] = mapped_column(String(16))  # Update or Cancel
    cap_sender: Mapped[str] = mapped_column(String(200))
    cap_identifier: Mapped[str] = mapped_column(String(200))
    cap_sent: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    bulletin: Mapped[Bulletin] = relationship()
