"""The status board: checks run in the background, a failing check is down, last seen stays."""

from __future__ import annotations

from hub.runtime.status import StatusBoard


def test_a_part_that_goes_down_keeps_its_last_seen_time_and_says_why() -> None:
    state = {"up": True}

    def flaky() -> tuple[bool, str]:
        if not state["up"]:
            raise ConnectionRefusedError("port 1883")
        return True, "port 1883"

    board = StatusBoard()
    board.register("mosquitto", "process", flaky)
    board.register("database", "database", lambda: (True, "sqlite"))
    assert [c.up for c in board.components()] == [None, None]
    board.refresh()
    first = board.components()[0]
    assert first.up and first.last_seen == first.checked_at
    state["up"] = False
    board.refresh()
    down = board.components()[0]
    assert down.up is False
    assert down.detail == "ConnectionRefusedError: port 1883"
    assert down.last_seen == first.last_seen and down.checked_at > first.checked_at
    assert board.components()[1].up


def test_the_board_checks_in_the_background() -> None:
    calls: list[int] = []
    board = StatusBoard(every=0.05)
    board.register("scheduler", "thread", lambda: (calls.append(1) is None, ""))
    board.start()
    try:
        import time

        deadline = time.monotonic() + 5
        while len(calls) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        board.stop()
