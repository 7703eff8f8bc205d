"""A hub process that dies in the middle of a mutual-aid step, for the crash tests.

`python -m tests.flows.aid_step_process POINT REQUEST_ID MARKER` (the environment of
`tests.flows.hub_process`) runs the flow dispatcher of `hub run` and stops dead at POINT of the
flow request REQUEST_ID: `step` once the step's service has written its rows but before its
transaction commits, `finish` once the step committed but before the request is marked done.
There it writes MARKER and waits for the test to SIGKILL it.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from flows.context import use_app
from flows.launcher import FlowDispatcher, LocalLauncher
from flows.prefect_settings import disable_flow_heartbeats
from flows.presence import NodePresence
from hub.config import settings_from_env
from hub.kernel import flow_requests
from hub.mutual_aid import services, upkeep
from web.app import create_app


def _stop_here(marker: Path) -> None:
    marker.write_text("stopped", encoding="utf-8")
    while True:  # the test kills the process here
        time.sleep(1)


def main(point: str, request_id: int, marker: Path) -> None:
    """Dispatch flow requests, stopping dead at `point` of request `request_id`."""
    if point == "step":
        for module, name in ((services, "ask_ring"), (upkeep, "close_if_done")):
            real = getattr(module, name)

            def halted(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                _real(*args, **kwargs)
                args[0].flush()
                _stop_here(marker)

            setattr(module, name, halted)
    elif point == "finish":
        real_finish = flow_requests.finish

        def finish(session: Any, finished_id: int, **kwargs: Any) -> bool:
            if finished_id == request_id:
                _stop_here(marker)
            return real_finish(session, finished_id, **kwargs)

        flow_requests.finish = finish  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown point {point!r}")
    app = create_app(settings_from_env())
    use_app(app)
    disable_flow_heartbeats()
    # A node, as a process of `hub run` is, so that its death is seen at once.
    presence = NodePresence("test-hub", ["dispatcher"]).start()
    FlowDispatcher(LocalLauncher(workers=1), poll_seconds=0.1, node=presence.name).start(recover=False)
    print("dispatching", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
