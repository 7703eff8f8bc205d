"""Notifications from the hub to a city, and the outbox of flow starts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import db
from hub.models.city import City
from hub.models.incident import Incident
from hub.models.types import UTCDateTime, utcnow


class Notification(db.Model):
    """A message to one city about an incident; one per (incident, city, kind)."""

    __tablename__ = "notifications"
    # The flow may retry or re-run: this constraint is what makes a second delivery a no-op.
    __table_args__ = (UniqueConstraint("incident_id", "city_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="incident")
    reason: Mapped[str] = mapped_column(String(16))  # "affected" or "neighbour"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    incident: Mapped[Incident] = relationship(lazy="joined")
    city: Mapped[City] = relationship()


class FlowRequestStatus:
    """States of a requested flow run."""

    PENDING = "pending"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    ALL = (PENDING, STARTED, DONE, FAILED)


class FlowRequest(db.Model):
    """A flow the hub has decided to run, written in the same transaction as its cause."""

    __tablename__ = "flow_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_name: Mapped[str] = mapped_column(String(64))
    # Same key, same request: recording one cause twice never starts two flows.
    key: Mapped[str] = mapped_column(String(128), unique=True)
    parameters: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(
        Enum(*FlowRequestStatus.ALL, name="flow_request_status", native_enum=False, length=16),
        default=FlowRequestStatus.PENDING,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
