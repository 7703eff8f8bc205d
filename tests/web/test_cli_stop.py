"""Stopping `hub run`: the signal handler's exception leaves the web server wherever it lands."""

from __future__ import annotations

import pytest
from waitress import wasyncore

from web.cli import _StopServing


class _Connection:
    """A connection of the server whose read or write is where the signal lands."""

    def handle_read_event(self) -> None:
        raise _StopServing

    handle_write_event = handle_read_event

    def handle_error(self) -> None:
        raise AssertionError("the server closed the connection and would have served on")


@pytest.mark.parametrize("step", [wasyncore.read, wasyncore.write])
def test_a_stop_signalled_while_a_connection_is_served_leaves_the_server_loop(step) -> None:
    # Under load the handler often runs inside a connection's read: with a plain exception
    # there, `hub run --demo` logged "uncaptured python exception, closing channel", kept
    # serving, and ignored the next SIGTERM as "already stopping".
    with pytest.raises(_StopServing):
        step(_Connection())
