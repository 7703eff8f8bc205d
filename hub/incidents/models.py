"""Incidents, their reports, and the notices sent to the cities around them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contracts.common import IncidentCategory, IncidentStatus, ReportKind
from hub.extensions import Model, db
from hub.kernel.models import City, User
from hub.kernel.types import UTCDateTime, utcnow


class Notification(Model):
    """A message to one city about an incident; one per (incident, city, kind)."""

    __tablename__ = "notifications"
    # The flow may retry or re-run: this constraint is what makes a second delivery a no-op.
    __table_args__ = (
        UniqueConstraint("incident_id", "city_id", "kind"),
        # The desks' change detector counts the unread notices per city, and only those.
        Index(
            "ix_notifications_unread",
            "city_id",
            sqlite_where=text("read_at IS NULL"),
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="incident")
    reason: Mapped[Literal["affected", "neighbour"]] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Whom the notice was routed to: the city's officer and leader on duty when it arrived
    # (from the duty roster; None when the roster had no one for that shift).
    duty_officer: Mapped[str | None] = mapped_column(String(64), nullable=True)
    duty_leader: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Who at the city read the notice (确认已阅); None for the hub's own acknowledgements.
    read_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # A notice of a change to an incident the city was already told about (kind "update:<id>").
    update_id: Mapped[int | None] = mapped_column(
        ForeignKey("incident_updates.id", ondelete="CASCADE"), nullable=True, index=True
    )

    incident: Mapped[Incident] = relationship(lazy="joined")
    city: Mapped[City] = relationship()
    update: Mapped[IncidentUpdate | None] = relationship(lazy="joined")
    read_by: Mapped[User | None] = relationship()


class IncidentUpdate(Model):
    """A change that the cities already told about an incident must hear of, with what changed.

    A follow-up or final report (续报/终报), a change of level or status, a change of the affected
    cities. `recipients` are the cities told before the change (slugs), fixed when it is recorded,
    so the flow that tells them tells the same cities however often it runs; a city newly concerned
    gets the incident's first notice instead, as it stands now.
    """

    __tablename__ = "incident_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    # {"report": {"kind", "body"}, "level": [before, after], "status": [before, after],
    #  "added": [slugs], "removed": [slugs]}: only what changed.
    changes: Mapped[dict[str, object]] = mapped_column(JSON)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    incident: Mapped[Incident] = relationship()


incident_affected_cities = Table(
    "incident_affected_cities",
    db.metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("city_id", ForeignKey("cities.id"), primary_key=True),
)

# The open incidents, newest first, whatever the year behind them: the desk and every "open only"
# list read these few rows, not every closed incident (a planner without statistics on the skew
# of `status` would otherwise scan them all).
OPEN_INCIDENTS_WHERE = "status != 'closed'"


class Incident(Model):
    """An incident recorded by one city, possibly affecting several."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "ix_incidents_open",
            "reported_at",
            sqlite_where=text(OPEN_INCIDENTS_WHERE),
            postgresql_where=text(OPEN_INCIDENTS_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    category: Mapped[IncidentCategory] = mapped_column(
        Enum(
            IncidentCategory,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    # 1 = I (特别重大) … 4 = IV (一般); lower number is more severe.
    level: Mapped[int] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    # WGS-84 degrees, picked on the map; both or neither.
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, index=True)
    reporting_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    status: Mapped[IncidentStatus] = mapped_column(
        Enum(
            IncidentStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=IncidentStatus.REPORTED,
        index=True,
    )
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    # The fields of a standard incident report (突发事件信息报告): where the news came from, what
    # happened, how far it reaches, where it is heading, what was done, and the casualties
    # (None: not known yet, which is not the same as none).
    source: Mapped[str] = mapped_column(String(200), default="", server_default="")
    nature: Mapped[str] = mapped_column(Text, default="", server_default="")
    extent: Mapped[str] = mapped_column(Text, default="", server_default="")
    trend: Mapped[str] = mapped_column(Text, default="", server_default="")
    measures: Mapped[str] = mapped_column(Text, default="", server_default="")
    deaths: Mapped[int | None] = mapped_column(Integer, nullable=True)
    injured: Mapped[int | None] = mapped_column(Integer, nullable=True)
    missing: Mapped[int | None] = mapped_column(Integer, nullable=True)

    reporting_city: Mapped[City] = relationship(lazy="joined")
    affected_cities: Mapped[list[City]] = relationship(
        secondary=incident_affected_cities, order_by=lambda: City.slug
    )
    created_by: Mapped[User | None] = relationship()
    reports: Mapped[list[IncidentReport]] = relationship(
        back_populates="incident", order_by=lambda: IncidentReport.reported_at
    )

    def __repr__(self) -> str:
        return f"<Incident {self.id} L{self.level} {self.title!r}>"


class IncidentReport(Model):
    """A report on an incident: the initial one, follow-ups (续报) and the final one."""

    __tablename__ = "incident_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ReportKind] = mapped_column(
        Enum(ReportKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    body: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # What a 续报 adds to the standard report; empty or None where it has nothing new to say.
    extent: Mapped[str] = mapped_column(Text, default="", server_default="")
    trend: Mapped[str] = mapped_column(Text, default="", server_default="")
    measures: Mapped[str] = mapped_column(Text, default="", server_default="")
    deaths: Mapped[int | None] = mapped_column(Integer, nullable=True)
    injured: Mapped[int | None] = mapped_column(Integer, nullable=True)
    missing: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The place the report speaks from, picked on the map (both or neither).
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    location: Mapped[str] = mapped_column(String(200), default="", server_default="")

    incident: Mapped[Incident] = relationship(back_populates="reports")
    city: Mapped[City] = relationship(lazy="joined")
    author: Mapped[User | None] = relationship()


class IncidentAttachment(Model):
    """A photo or document attached to an incident; its bytes live under the instance folder."""

    __tablename__ = "incident_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))  # as uploaded, for display and download
    content_type: Mapped[str] = mapped_column(String(100))  # as sniffed from the bytes
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # The file's name in the attachments folder: chosen by the hub, never by the uploader.
    storage_name: Mapped[str] = mapped_column(String(80), unique=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    city: Mapped[City] = relationship(lazy="joined")
    uploaded_by: Mapped[User | None] = relationship()
