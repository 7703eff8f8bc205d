"""Action items (督办事项) and their append-only history, whichever meeting or drill opened them."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow


class ActionItem(Model):
    """One task with one owner city and one due day; `origin` says what opened it."""

    __tablename__ = "action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    # "resolution" (a meeting's decision) or "drill" (a corrective action); the id is that row's.
    origin: Mapped[str] = mapped_column(String(16))
    origin_id: Mapped[int] = mapped_column(Integer, index=True)
    # The public id of the meeting or drill, for the calendar's RELATED-TO and the carry-over.
    context_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)
    owner_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    chair_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    due_on: Mapped[date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    evidence: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    carried_over: Mapped[int] = mapped_column(Integer, default=0)
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # the VTODO's SEQUENCE
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner_city: Mapped[City] = relationship(foreign_keys=[owner_city_id], lazy="joined")
    chair_city: Mapped[City] = relationship(foreign_keys=[chair_city_id], lazy="joined")
    events: Mapped[list[ActionItemEvent]] = relationship(
        back_populates="action_item", order_by=lambda: ActionItemEvent.id
    )


class ActionItemEvent(Model):
    """One entry of an item's history (opened, progress, closed, reopened); never changed."""

    __tablename__ = "action_item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_item_id: Mapped[int] = mapped_column(ForeignKey("action_items.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    action_item: Mapped[ActionItem] = relationship(back_populates="events")
    city: Mapped[City] = relationship(lazy="joined")


class ActionItemReminder(Model):
    """A reminder sent for one slot of an item's plan; the slot's key makes it once only."""

    __tablename__ = "action_item_reminders"
    __table_args__ = (UniqueConstraint("key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action_item_id: Mapped[int] = mapped_column(ForeignKey("action_items.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # before or overdue
    days: Mapped[int] = mapped_column(Integer)
    notify_chair: Mapped[bool] = mapped_column(default=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
