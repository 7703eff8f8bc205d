"""The flows the hub can start, by the name used in its flow-request outbox.

Each capability declares its flows (`hub.capabilities`); this collects them.
"""

from __future__ import annotations

from functools import cache

from prefect import Flow

from hub.capabilities import flow_names, resolve

DEPLOYMENT_NAME = "hub"


@cache
def flows() -> dict[str, Flow[..., object]]:
    """Return every capability's flows by their flow-request name."""
    found: dict[str, Flow[..., object]] = {}
    for name, target in flow_names().items():
        value = resolve(target)
        if not isinstance(value, Flow):
            raise TypeError(f"{target} (declared for {name!r}) is not a Prefect flow")
        found[name] = value
    return found
