"""haproxy's configuration for the topology's web processes (no process started)."""

from __future__ import annotations

from hub.runtime.topology import haproxy_config


def test_haproxy_checks_readiness_retries_elsewhere_and_keeps_no_sticky_sessions() -> None:
    config = haproxy_config(8080, 8081, [("web-1", 9001), ("web-2", 9002)])
    lines = [line.strip() for line in config.splitlines()]
    assert "bind 127.0.0.1:8080" in lines
    assert "option httpchk GET /api/v1/ready" in lines
    assert "server web-1 127.0.0.1:9001 check" in lines
    assert "server web-2 127.0.0.1:9002 check" in lines
    # A request sent to a process killed between two checks is tried again on another one.
    assert "option redispatch 1" in lines
    assert not any(line.startswith(("cookie ", "stick ", "stick-table", "balance source")) for line in lines)
