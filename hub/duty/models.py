"""The duty roster (值班表) and the contact directory (通讯录) of each city."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow


class DutyShift(Model):
    """Who is on duty in one city for one shift of one day: the officer and the leader (领导带班)."""

    __tablename__ = "duty_shifts"
    __table_args__ = (UniqueConstraint("city_id", "day", "shift"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    day: Mapped[date] = mapped_column(Date)  # the local (Asia/Shanghai) day the shift starts
    shift: Mapped[Literal["day", "night"]] = mapped_column(String(8))
    officer: Mapped[str] = mapped_column(String(64))
    officer_phone: Mapped[str] = mapped_column(String(32), default="")
    leader: Mapped[str] = mapped_column(String(64))
    leader_phone: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    city: Mapped[City] = relationship(lazy="joined")


class Contact(Model):
    """One entry of a city's contact directory: its duty desk, a coordinator or a leader."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("city_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    kind: Mapped[Literal["desk", "coordinator", "leader"]] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(64), default="")  # 职务
    phone: Mapped[str] = mapped_column(String(32), default="")
    mobile: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    city: Mapped[City] = relationship(lazy="joined")
