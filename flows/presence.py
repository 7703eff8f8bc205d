"""This process as a hub node: registered when it starts, beating while it runs, stopped at the end."""

from __future__ import annotations

import logging
from typing import Self

from flows.context import hub_session
from hub.kernel import nodes
from hub.runtime.periodic import Periodic

log = logging.getLogger(__name__)


class NodePresence:
    """Keep this process's row in `hub_nodes` alive, so that other processes know it runs."""

    def __init__(self, role: str, roles: list[str], every: float = nodes.BEAT_SECONDS) -> None:
        self.name = nodes.new_name(role)
        self.roles = roles
        self._periodic = Periodic("hub-node-presence", every, self._beat)

    def start(self) -> Self:
        """Register this node and beat from now on."""
        with hub_session() as session:
            nodes.register(session, self.name, self.roles)
        nodes.set_current(self.name)
        self._periodic.start()
        log.info("running as hub node %s (%s)", self.name, ", ".join(self.roles))
        return self

    def stop(self) -> None:
        """Stop beating and mark this node stopped, so that what it held is taken over at once."""
        self._periodic.stop()
        nodes.set_current(None)
        with hub_session() as session:
            nodes.stop(session, self.name)

    def _beat(self) -> None:
        with hub_session() as session:
            nodes.beat(session, self.name)
