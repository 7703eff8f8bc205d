"""Mutual aid between the cities: the registry, requests, commitments and their rules."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry, Schedule
from hub.mutual_aid import demo, desk, services, upkeep

CAPABILITY = Capability(
    name="mutual_aid",
    models=("hub.mutual_aid.models",),
    flows={
        services.SOURCE: "flows.mutual_aid:ask_ring",
        services.REMIND: "flows.mutual_aid:remind_ask",
        services.EXPIRE: "flows.mutual_aid:expire_commitment",
        services.OVERDUE: "flows.mutual_aid:alert_overdue_arrival",
        upkeep.VERIFY: "flows.mutual_aid:remind_verify",
        upkeep.CHASE: "flows.mutual_aid:chase_signature",
        upkeep.CLOSE: "flows.mutual_aid:close_request",
        demo.PLAY: "flows.mutual_aid:play_demo_partners",
    },
    schedules=(
        Schedule("aid rings", services.schedule_rings),
        Schedule("aid reminders", services.schedule_reminders),
        Schedule("aid expiries", services.schedule_expiries),
        Schedule("aid overdue arrivals", services.schedule_overdue),
        Schedule("aid registry verification", upkeep.schedule_verification),
        Schedule("aid cost signatures", upkeep.schedule_signatures),
        Schedule("aid requests closing", upkeep.schedule_closing),
        Schedule("aid demo partners", demo.schedule_partners),
    ),
    blueprints=("web.mutual_aid.views:bp",),
    api_blueprints=("web.mutual_aid.api:bp",),
    nav=(NavEntry("mutual_aid.request_list", N_("支援"), 25),),
    urgent=desk.urgent,
    waiting=desk.waiting,
    desk_version=desk.version,
)
