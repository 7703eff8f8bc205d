"""Daily and zero reports (日报告/零报告) that every city files every day."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry, Schedule
from hub.daily_reports import desk, services

CAPABILITY = Capability(
    name="daily_reports",
    models=("hub.daily_reports.models",),
    flows={services.CHECK: "flows.daily_reports:check_daily_reports"},
    schedules=(Schedule("daily report check", services.schedule_check),),
    blueprints=("web.daily_reports.views:bp",),
    api_blueprints=("web.daily_reports.api:bp",),
    nav=(NavEntry("daily_reports.daily_report_page", N_("日报告"), 40),),
    urgent=desk.urgent,
    desk_version=desk.version,
)
