"""The cities' own platforms: their registry and the incremental sync of their feeds."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry, Schedule
from hub.partners import services

CAPABILITY = Capability(
    name="partners",
    models=("hub.partners.models",),
    flows={services.SYNC: "flows.partners:sync_partner", services.SYNC_DUE: "flows.partners:sync_partners"},
    schedules=(Schedule("partner syncs", services.schedule_syncs),),
    blueprints=("web.partners.views:bp",),
    api_blueprints=("web.partners.api:bp",),
    nav=(NavEntry("partners.partner_health", N_("平台同步"), 60),),
)
