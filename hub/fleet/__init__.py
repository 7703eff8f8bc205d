"""Mobile command vehicles (移动指挥车) and linkage systems (110/119/120/122) over MQTT."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry
from hub.fleet import desk, services

CAPABILITY = Capability(
    name="fleet",
    models=("hub.fleet.models",),
    blueprints=("web.fleet.views:bp",),
    api_blueprints=("web.fleet.api:bp",),
    nav=(NavEntry("fleet.index", N_("指挥车"), 50),),
    urgent=desk.urgent,
    desk_version=desk.version,
    desk_probe=desk.probe,
    broker_accounts=services.broker_accounts,
)
