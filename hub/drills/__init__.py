"""Joint drills (联合演练): plan, play, measure and evaluate drills between the member cities."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry, Schedule
from hub.drills import desk, services

CAPABILITY = Capability(
    name="drills",
    models=("hub.drills.models",),
    flows={
        services.STARTEX: "flows.drills:drill_startex",
        services.INJECT: "flows.drills:drill_inject",
        services.FLAG: "flows.drills:drill_flag",
        services.ENDEX: "flows.drills:drill_endex",
        services.AAR: "flows.drills:drill_aar",
    },
    schedules=(Schedule("drill steps", services.schedule_steps, timer=services.timed_steps),),
    blueprints=("web.drills.views:bp",),
    api_blueprints=("web.drills.api:bp",),
    nav=(NavEntry("drills.drill_list", N_("演练"), 45),),
    urgent=desk.urgent,
    desk_version=desk.version,
)
