"""Wake the flow dispatcher after a commit that may have requested a flow."""

from __future__ import annotations

from typing import Protocol

from flask import Flask


class FlowKicker(Protocol):
    """Something that starts pending flow requests soon after a commit."""

    def wake(self) -> None: ...


def kick_flows(app: Flask) -> None:
    """Tell the flow dispatcher that new requests may be waiting."""
    kicker: FlowKicker | None = app.extensions.get("flow_kicker")
    if kicker is not None:
        kicker.wake()
