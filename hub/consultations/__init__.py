"""Joint consultations (联席会商) and the regular joint conference (联席会议)."""

from __future__ import annotations

from hub.capabilities import Capability

CAPABILITY = Capability(
    name="consultations",
    models=("hub.action_items.models", "hub.consultations.models"),
)
