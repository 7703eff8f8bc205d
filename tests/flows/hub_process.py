"""A hub process for tests that need several: the scheduler and flow dispatcher of `hub run`,
on the database and Prefect API given in the environment, for a number of seconds.

`python -m tests.flows.hub_process SECONDS` (HUB_DATABASE_URL, HUB_INSTANCE_PATH, HUB_SECRET_KEY,
HUB_ENCRYPTION_KEY and PREFECT_API_URL set). It prints "ticking" once both run, so that a test can
wait for every process before the moment that matters, and stops cleanly on SIGTERM. It runs
as a hub node, so its flow dispatcher's watchdog takes over what a killed process left.
"""

from __future__ import annotations

import signal
import sys
import threading

from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from flows.prefect_settings import disable_flow_heartbeats, drain_prefect_workers
from flows.presence import NodePresence
from flows.scheduler import Scheduler
from hub.config import settings_from_env
from web.app import create_app


def main(seconds: float) -> None:
    """Tick and dispatch for `seconds` or until SIGTERM, then stop both."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    settings = settings_from_env()
    app = create_app(settings)
    use_app(app)
    disable_flow_heartbeats()
    presence = NodePresence("test-hub", ["dispatcher", "scheduler"]).start()
    dispatcher = FlowDispatcher(LocalLauncher(workers=2), poll_seconds=0.1, node=presence.name)
    scheduler = Scheduler(settings, wake=dispatcher, tick_seconds=0.2)
    dispatcher.start()
    scheduler.start()
    print("ticking", presence.name, flush=True)
    try:
        stop.wait(seconds)
    finally:
        scheduler.stop()
        dispatcher.stop()
        presence.stop()
        drain_prefect_workers()


if __name__ == "__main__":
    main(float(sys.argv[1]))
