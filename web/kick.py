"""Wake background workers after a commit that gave them something to do."""

from __future__ import annotations

from typing import Protocol

from flask import Flask


class Kicker(Protocol):
    """Something that looks for new work soon after a commit."""

    def wake(self) -> None: ...


def _kick(app: Flask, name: str) -> None:
    kicker: Kicker | None = app.extensions.get(name)
    if kicker is not None:
        kicker.wake()


def kick_flows(app: Flask) -> None:
    """Tell the flow dispatcher that new requests may be waiting."""
    _kick(app, "flow_kicker")


def kick_mqtt(app: Flask) -> None:
    """Tell the MQTT publisher that the outbox may hold new messages."""
    _kick(app, "mqtt_kicker")


def kick_broker(app: Flask) -> None:
    """Tell the managed broker to reload its password and ACL files after a registry change."""
    _kick(app, "broker_kicker")
