"""Joint drills: the plan, its injects (one row per target), the responses and the observations.

The inject table is the drill's timer: a pending row's `due_at` is when it goes out, and the
scheduler asks for the due rows on every tick. Nothing here is ever deleted: a skipped inject keeps
its reason, an inject not played by ENDEX is marked so.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow


class DrillStatus:
    """Where a drill is in its life."""

    DRAFT = "draft"
    APPROVED = "approved"
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"
    IN_PLAY = (RUNNING, PAUSED)
    ALL = (DRAFT, APPROVED, RUNNING, PAUSED, ENDED)


class Drill(Model):
    """A joint drill (联合演练) as planned and as played."""

    __tablename__ = "drills"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    drill_type: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    controlling_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    # The whole plan as validated (`contracts.drills.DrillPlan`): plans, cities, objectives, staff.
    plan: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DrillStatus.DRAFT, index=True)
    time_scale: Mapped[float] = mapped_column(Float, default=1.0)
    startex: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    endex: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_total_s: Mapped[float] = mapped_column(Float, default=0.0)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The draft after-action report's figures (rules.aar_statistics), written by the AAR step.
    aar: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    aar_drafted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The lead evaluator's finalisation of the report's narrative: which revision, by whom, when.
    aar_final_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    aar_finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    aar_finalised_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    controlling_city: Mapped[City] = relationship(lazy="joined")
    injects: Mapped[list[DrillInject]] = relationship(
        back_populates="drill", order_by=lambda: (DrillInject.offset_s, DrillInject.number)
    )
    aar_revisions: Mapped[list[DrillAarRevision]] = relationship(
        back_populates="drill", order_by=lambda: DrillAarRevision.number
    )


class DrillInject(Model):
    """One MSEL row of a drill, to one target, with where it stands in play."""

    __tablename__ = "drill_injects"
    __table_args__ = (UniqueConstraint("drill_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    offset_s: Mapped[int] = mapped_column(Integer)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    role: Mapped[str | None] = mapped_column(String(64), nullable=True)
    vehicle: Mapped[str | None] = mapped_column(String(64), nullable=True)
    linkage_system: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    expected_action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    expected_within_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    objective: Mapped[str | None] = mapped_column(String(16), nullable=True)
    critical_task: Mapped[str | None] = mapped_column(String(16), nullable=True)
    contingency_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    controller: Mapped[str | None] = mapped_column(String(64), nullable=True)
    evaluator_notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # rules.SlotState: held, pending, delivered, skipped, not_played.
    state: Mapped[str] = mapped_column(String(16), index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    skip_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What the delivery made in its channel: "incident:<uuid>", "command:<uuid>", "bulletin:<uuid>".
    delivery_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)

    drill: Mapped[Drill] = relationship(back_populates="injects")
    city: Mapped[City] = relationship(lazy="joined")


class DrillResponse(Model):
    """Something a target did inside the drill, with its time: the raw material of the measures."""

    __tablename__ = "drill_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    inject_id: Mapped[int | None] = mapped_column(
        ForeignKey("drill_injects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    kind: Mapped[str] = mapped_column(String(32))  # contracts.drills.ExpectedAction
    device: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))

    city: Mapped[City] = relationship(lazy="joined")


class DrillObservation(Model):
    """An evaluator's observation, on a critical task with a rating or on the drill in general."""

    __tablename__ = "drill_observations"

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    evaluator: Mapped[str] = mapped_column(String(64))
    evaluator_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    objective: Mapped[str | None] = mapped_column(String(16), nullable=True)
    critical_task: Mapped[str | None] = mapped_column(String(16), nullable=True)
    rating: Mapped[str | None] = mapped_column(String(1), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DrillCorrectiveAction(Model):
    """A corrective action a drill showed: an action item of the shared engine, and the plan
    (预案) it revises. The item (owner city, due date, reminders, closing) lives in `action_items`."""

    __tablename__ = "drill_corrective_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    action_item_id: Mapped[int] = mapped_column(ForeignKey("action_items.id"), unique=True)
    # One of the drill's plans (`DrillPlan.plans`): the revision it asks for, with owner and deadline (S7).
    plan: Mapped[str] = mapped_column(String(200))
    # The objective whose area for improvement it answers, when it answers one.
    objective: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DrillHotwash(Model):
    """A player's hot-wash form (参演人员自评), filled right after ENDEX: one per person."""

    __tablename__ = "drill_hotwash"
    __table_args__ = (UniqueConstraint("drill_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    author: Mapped[str] = mapped_column(String(64))
    # 1 (poorly) to 5 (very well): how well the person's own city did, in their own judgement.
    self_rating: Mapped[int] = mapped_column(Integer)
    went_well: Mapped[str] = mapped_column(Text)
    to_improve: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    city: Mapped[City] = relationship(lazy="joined")


class DrillAarRevision(Model):
    """One save of the after-action report's narrative (`contracts.drills.AarNarrative.content`);
    appended, never changed, as the minutes of a meeting are."""

    __tablename__ = "drill_aar_revisions"
    __table_args__ = (UniqueConstraint("drill_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(64))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    content: Mapped[dict[str, object]] = mapped_column(JSON)

    drill: Mapped[Drill] = relationship(back_populates="aar_revisions")
    city: Mapped[City] = relationship(lazy="joined")
