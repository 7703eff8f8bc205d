"""Process-wide Prefect settings the hub needs."""

from __future__ import annotations

import prefect.context
from prefect.context import SettingsContext
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY


def disable_flow_heartbeats() -> None:
    """Turn off flow-run heartbeats for every thread of this process.

    Each flow run otherwise waits about a second at its end for the heartbeat thread; the hub's
    flows are short and run inside the hub, which watches them itself. The setting cannot be
    turned off from the environment, and a context entered on one thread does not reach threads
    created later (Flask's request threads), so the process-global settings context is replaced.
    """
    current = prefect.context.get_settings_context()
    settings = current.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
    prefect.context.GLOBAL_SETTINGS_CONTEXT = SettingsContext(profile=current.profile, settings=settings)


def drain_prefect_workers(timeout: float = 10.0) -> None:
    """Send Prefect's queued logs and events while its API is still up.

    Left to the interpreter's exit, the workers would try a server the hub has already stopped,
    and keep the process from exiting.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)
