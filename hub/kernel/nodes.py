"""The hub's processes as every other process sees them: who runs, where, and since when.

A node is one running process (`hub run`, an ingest worker, a flow worker of the hub). It writes
its row when it starts and beats every `BEAT_SECONDS`; a node quiet for `DEAD_AFTER` or marked
stopped is dead, and so is a node of this host whose process is gone (found at once, where a
quiet heartbeat takes `DEAD_AFTER`). The watchdog of the flow requests asks `dead_nodes`.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from hub.kernel.models import HubNode
from hub.kernel.types import DbSession, utcnow

BEAT_SECONDS = 5.0
DEAD_AFTER = timedelta(seconds=30)


def new_name(role: str) -> str:
    """Return a name no other process will have: role, host, process id and a random tail."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:96]


def register(session: DbSession, name: str, roles: list[str]) -> HubNode:
    """Record this process as a running node."""
    now = utcnow()
    node = HubNode(
        name=name, roles=roles, host=socket.gethostname(), pid=os.getpid(), started_at=now, last_seen_at=now
    )
    session.add(node)
    session.flush()
    return node


def beat(session: DbSession, name: str) -> None:
    """Tell the others this node is still alive."""
    session.execute(update(HubNode).where(HubNode.name == name).values(last_seen_at=utcnow()))


def stop(session: DbSession, name: str) -> None:
    """Mark this node stopped, so that what it leaves is taken over at once."""
    session.execute(update(HubNode).where(HubNode.name == name).values(stopped_at=utcnow()))


@dataclass(frozen=True)
class NodeState:
    """A node and whether the others count it alive."""

    name: str
    roles: tuple[str, ...]
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    alive: bool


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def _alive(node: HubNode, now: datetime, host: str) -> bool:
    if node.stopped_at is not None or node.last_seen_at < now - DEAD_AFTER:
        return False
    return node.host != host or _process_exists(node.pid)


def states(
    session: DbSession, now: datetime | None = None, since: timedelta = timedelta(days=1)
) -> list[NodeState]:
    """Return the nodes seen within `since`, the running ones first, then by name."""
    now = now or utcnow()
    host = socket.gethostname()
    rows = session.scalars(select(HubNode).where(HubNode.last_seen_at >= now - since))
    found = [
        NodeState(
            name=node.name,
            roles=tuple(node.roles),
            host=node.host,
            pid=node.pid,
            started_at=node.started_at,
            last_seen_at=node.last_seen_at,
            stopped_at=node.stopped_at,
            alive=_alive(node, now, host),
        )
        for node in rows
    ]
    return sorted(found, key=lambda n: (not n.alive, n.name))


def live_names(session: DbSession, now: datetime | None = None) -> set[str]:
    """Return the names of the nodes alive now."""
    now = now or utcnow()
    host = socket.gethostname()
    recent = session.scalars(select(HubNode).where(HubNode.last_seen_at >= now - DEAD_AFTER))
    return {node.name for node in recent if _alive(node, now, host)}


_current: str | None = None


def set_current(name: str | None) -> None:
    """Name the node this process runs as (None: not a hub node, e.g. a Prefect worker's run)."""
    global _current
    _current = name


def current() -> str | None:
    """Return the name of the node this process runs as, if it is one."""
    return _current
