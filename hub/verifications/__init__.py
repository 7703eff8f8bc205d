"""Verification requests (核报): one city asks another to confirm what it heard, by a deadline."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry, Schedule
from hub.verifications import desk, services

CAPABILITY = Capability(
    name="verifications",
    models=("hub.verifications.models",),
    flows={
        services.DELIVER: "flows.verifications:deliver_verification_request",
        services.CHASE: "flows.verifications:chase_verifications",
    },
    schedules=(Schedule("late answers", services.schedule_chase),),
    blueprints=("web.verifications.views:bp",),
    api_blueprints=("web.verifications.api:bp",),
    nav=(NavEntry("verifications.verification_list", N_("核报"), 30),),
    urgent=desk.urgent,
    waiting=desk.waiting,
    desk_version=desk.version,
)
