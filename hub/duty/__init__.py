"""The people on duty: each city's duty roster (值班表) by day and shift, with the officer and the
leader on duty (领导带班), and its contact directory (通讯录) of duty desks, coordinators and leaders."""

from __future__ import annotations

from hub.capabilities import N_, Capability, NavEntry
from hub.duty import desk

CAPABILITY = Capability(
    name="duty",
    models=("hub.duty.models",),
    blueprints=("web.duty.views:bp",),
    api_blueprints=("web.duty.api:bp",),
    nav=(
        NavEntry("duty.roster_page", N_("值班表"), 45),
    ),  # the directory is linked from the roster and the desk
    desk_panels=("duty/_desk.html",),
    desk_context=desk.context,
    desk_version=desk.version,
)
