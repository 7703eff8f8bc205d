"""Incidents (突发事件) and their follow-up reports."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Column, Enum, ForeignKey, Integer, String, Table, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contracts.common import IncidentCategory, IncidentStatus, ReportKind
from hub.extensions import db
from hub.models.city import City
from hub.models.types import UTCDateTime, utcnow
from hub.models.user import User

incident_affected_cities = Table(
    "incident_affected_cities",
    db.metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("city_id", ForeignKey("cities.id"), primary_key=True),
)


class Incident(db.Model):
    """An incident recorded by one city, possibly affecting several."""

    __tablename__ = "incidents"

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
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
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
    exercise: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

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


class IncidentReport(db.Model):
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

    incident: Mapped[Incident] = relationship(back_populates="reports")
    city: Mapped[City] = relationship(lazy="joined")
    author: Mapped[User | None] = relationship()
