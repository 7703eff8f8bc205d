"""Daily and zero reports (日报告/零报告), one per city per day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow


class DailyReport(Model):
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
