"""The injects of drills in play, for the region's map: delivered ones only, while the drill runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.types import utcnow


def test_only_delivered_injects_of_a_drill_in_play_are_on_the_map(make_drill: Callable[..., Drill]) -> None:
    drill = make_drill()
    assert services.injects_in_play(db.session) == []
    start = utcnow() - timedelta(seconds=5)
    services.start(db.session, drill.id, start)
    assert services.deliver(db.session, drill.id, 1, now=start).outcome == "delivered"
    db.session.commit()
    [played] = services.injects_in_play(db.session)
    assert (played.drill_id, played.number) == (drill.id, 1)
    services.end(db.session, drill.id)
    db.session.commit()
    assert services.injects_in_play(db.session) == []
