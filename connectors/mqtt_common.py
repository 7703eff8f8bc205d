"""What every MQTT client of the project does the same way: session counters, TCP_NODELAY, and
which broker refusals are final."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

# CONNACK refusals that another attempt with the same settings cannot cure (MQTT 3.1.1 §3.2.2.3,
# MQTT 5 §3.2.2.2): retrying them only hammers the broker and fills its log.
PERMANENT_REFUSALS = frozenset(
    {
        "Bad user name or password",
        "Not authorized",
        "Client identifier not valid",
        "Banned",
        "Bad authentication method",
        "Unsupported protocol version",
    }
)


def next_session(previous: int) -> int:
    """Return the session counter for the next connection.

    Never below the current time in milliseconds, so it also rises across process restarts and a
    late will of an earlier process cannot undo a newer birth (Sparkplug B's bdSeq idea).
    """
    return max(previous + 1, time.time_ns() // 1_000_000)


def disable_nagle(sock: Any, who: str, logger: logging.Logger) -> None:
    """Set TCP_NODELAY: without it Nagle and delayed ACKs add about 40 ms to every small message."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as error:
        logger.warning("%s: could not set TCP_NODELAY: %s", who, error)
