"""Joint drills (联合演练): plan, play, measure and evaluate drills between the member cities."""

from __future__ import annotations

from hub.capabilities import Capability, Schedule
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
    schedules=(Schedule("drill steps", services.schedule_steps),),
    urgent=desk.urgent,
)
