"""Incidents (接报): records, follow-up reports, and the notices to the cities around them."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry
from hub.incidents import desk
from hub.incidents.notifications import NOTIFY_UPDATE
from hub.incidents.services import NOTIFY_NEIGHBOURS

CAPABILITY = Capability(
    name="incidents",
    models=("hub.incidents.models",),
    flows={
        NOTIFY_NEIGHBOURS: "flows.incidents:notify_neighbours",
        NOTIFY_UPDATE: "flows.incidents:notify_incident_update",
    },
    blueprints=("web.incidents.views:bp", "web.incidents.views:notices"),
    api_blueprints=("web.incidents.api:bp",),
    nav=(
        NavEntry("incidents.index", N_("事件"), 10),
        NavEntry("incidents.new", N_("接报新事件"), 11, primary=True, roles=("coordinator", "duty_officer")),
    ),
    urgent=desk.urgent,
    desk_panels=("incidents/_desk.html",),
    desk_context=desk.context,
    desk_panel_token=desk.panel_token,
    desk_version=desk.version,
)
