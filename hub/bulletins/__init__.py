"""Bulletins and warnings (信息通报/预警) to the cities, with their receipts (回执), CAP 1.2 in and out."""

from __future__ import annotations

from hub.bulletins import desk, services
from hub.capabilities import N_, Capability, NavEntry, Schedule

CAPABILITY = Capability(
    name="bulletins",
    models=("hub.bulletins.models",),
    flows={
        services.DISTRIBUTE: "flows.bulletins:distribute_bulletin",
        services.CANCEL: "flows.bulletins:deliver_bulletin_cancellation",
        services.FORWARD: "flows.bulletins:forward_receipts_flow",
        services.CHASE: "flows.bulletins:chase_receipts",
    },
    schedules=(
        Schedule("bulletin deliveries", services.schedule_deliveries),
        Schedule("late receipts", services.schedule_chase),
    ),
    blueprints=("web.bulletins.views:bp",),
    api_blueprints=("web.bulletins.api:bp",),
    nav=(NavEntry("bulletins.bulletin_list", N_("通报"), 20),),
    urgent=desk.urgent,
    waiting=desk.waiting,
    desk_version=desk.version,
)
