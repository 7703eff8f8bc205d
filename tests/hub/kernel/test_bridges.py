"""The city-edge bridges' recorded states: since when, last heard, and two hub processes at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from hub.extensions import db
from hub.kernel import bridges
from hub.kernel.models import BridgeState

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_changed_at_moves_only_when_the_state_changes(city) -> None:
    city("xuzhou")
    assert bridges.record(db.session, "xuzhou", True, T0) == "bridge_up"
    bridges.record(db.session, "xuzhou", True, T0 + timedelta(minutes=1))
    [up] = bridges.states(db.session)
    assert (up.connected, up.changed_at, up.seen_at) == (True, T0, T0 + timedelta(minutes=1))
    assert bridges.record(db.session, "xuzhou", False, T0 + timedelta(minutes=2)) == "bridge_down"
    [down] = bridges.states(db.session)
    assert (down.connected, down.changed_at) == (False, T0 + timedelta(minutes=2))


def test_another_process_adding_the_first_row_meanwhile_is_updated_not_refused(
    city, monkeypatch: pytest.MonkeyPatch
) -> None:
    xuzhou = city("xuzhou")
    db.session.commit()
    with Session(db.engine) as other:  # the other hub process, a moment earlier
        other.add(BridgeState(city_id=xuzhou.id, connected=True, changed_at=T0, seen_at=T0))
        other.commit()
    real_get = db.session.get
    calls = []

    def get_as_before_the_other_committed(*args, **kwargs):  # the race: read before the insert
        calls.append(args)
        return None if len(calls) == 1 else real_get(*args, **kwargs)

    monkeypatch.setattr(db.session, "get", get_as_before_the_other_committed)
    assert bridges.record(db.session, "xuzhou", False, T0 + timedelta(seconds=1)) == "bridge_down"
    assert len(calls) == 2  # refused by the other row, then read it
    monkeypatch.undo()
    db.session.commit()
    [state] = bridges.states(db.session)
    assert (state.connected, state.changed_at) == (False, T0 + timedelta(seconds=1))
