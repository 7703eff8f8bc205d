"""Joint drills (联合演练): plan, play, measure and evaluate drills between the member cities."""

from __future__ import annotations

from hub.capabilities import Capability

CAPABILITY = Capability(name="drills", models=("hub.drills.models",))
