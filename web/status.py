"""The running hub's parts for the operator status page and its API, and the link-down banner."""

from __future__ import annotations

from flask import Flask, current_app

from hub.app import settings_of
from hub.config import Settings
from hub.extensions import db
from hub.kernel import bridges as bridge_registry
from hub.kernel import nodes as node_registry
from hub.kernel.bridges import BridgeStatus
from hub.kernel.nodes import NodeState
from hub.kernel.storage import free_bytes
from hub.runtime.status import Component, StatusBoard


def components() -> list[Component]:
    """Return the parts of this hub as last checked.

    A process started without the runner (a bare web process, the tests) has no board; it
    checks its own database connection now.
    """
    board: StatusBoard | None = current_app.extensions.get("status_board")
    if board is None:
        board = StatusBoard()
        board.register("database", "database", _database)
        settings = settings_of(current_app)
        board.register("disk", "disk", lambda: disk_check(settings))
        board.refresh()
    return board.components()


def nodes() -> list[NodeState]:
    """Return the hub's processes seen in the last day, the running ones first."""
    return node_registry.states(db.session)


def bridges() -> list[BridgeStatus]:
    """Return the city-edge brokers' bridges as their last notifications left them, the down ones first."""
    return bridge_registry.states(db.session)


def _database() -> tuple[bool, str]:
    db.session.execute(db.text("SELECT 1"))
    return True, db.engine.dialect.name


def disk_check(settings: Settings) -> tuple[bool, str]:
    """Report the instance folder's free space against the margin below which writes are refused."""
    free_mb = free_bytes(settings.instance_path) // (1024 * 1024)
    return free_mb >= settings.min_free_disk_mb, f"{free_mb} MB / {settings.min_free_disk_mb} MB"


def mqtt_link_down(app: Flask) -> bool:
    """Tell whether this hub has a broker link and it is not connected now."""
    link = app.extensions.get("mqtt_link")
    return link is not None and not link.connected


def init_app(app: Flask) -> None:
    """Tell every page whether the broker link is down, so the banner can say so."""

    @app.context_processor
    def _link_state() -> dict[str, object]:
        return {"mqtt_link_down": mqtt_link_down(app)}
