"""The drills' timer (`Schedule.timer`): it asks for the steps that have times of their own (STARTEX,
the due injects, ENDEX) and names the moment the next one is due, so the scheduler wakes then and
not at its next tick; the injects due together are one request, keyed by the first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa

from hub.drills import rules, services
from hub.drills.models import Drill, DrillInject
from hub.extensions import db
from hub.kernel.models import FlowRequest
from hub.kernel.types import utcnow

TOGETHER = (
    "number,offset,city,channel,message,expected_action,expected_within,contingency_of\r\n"
    "1,0:00:00,linyi,desk_notice,上游水位超警戒,notice_read,0:10:00,\r\n"
    "2,0:00:00,xuzhou,desk_notice,骆马湖水位上涨,notice_read,0:10:00,\r\n"
    "3,0:00:00,linyi,incident,临沂河段出现管涌,,,\r\n"
    "4,0:10:00,linyi,desk_notice,请再次确认,notice_read,0:10:00,\r\n"
)


def _inject_requests(drill: Drill) -> list[tuple[str, dict[str, object]]]:
    query = sa.select(FlowRequest).where(FlowRequest.key.like(f"drill:{drill.id}:inject:%"))
    return [(r.key, r.parameters) for r in db.session.scalars(query.order_by(FlowRequest.id))]


def _due_at(drill: Drill, number: int) -> object:
    query = sa.select(DrillInject.due_at).where(
        DrillInject.drill_id == drill.id, DrillInject.number == number
    )
    return db.session.scalar(query)


def test_the_injects_due_together_are_one_request_and_the_next_moment_is_named(
    make_drill: Callable[..., Drill],
) -> None:
    drill = make_drill(csv=TOGETHER)
    start = utcnow() - timedelta(seconds=1)
    services.start(db.session, drill.id, start)
    now = utcnow()
    upcoming = services.timed_steps(db.session, now)
    assert _inject_requests(drill) == [
        (rules.inject_key(drill.id, 1), {"drill_id": drill.id, "number": 1, "also": [2, 3]})
    ]
    assert upcoming == _due_at(drill, 4)
    services.timed_steps(db.session, now)
    assert len(_inject_requests(drill)) == 1  # asked once, however often the timer looks

    # The run delivered the first only: the others are due again, asked for under their own key.
    assert services.deliver(db.session, drill.id, 1, now=now).outcome == "delivered"
    services.timed_steps(db.session, now)
    assert _inject_requests(drill)[-1] == (
        rules.inject_key(drill.id, 2),
        {"drill_id": drill.id, "number": 2, "also": [3]},
    )


def test_the_timer_names_startex_then_looks_again_soon_and_then_names_endex(
    make_drill: Callable[..., Drill],
) -> None:
    drill = make_drill(csv=TOGETHER)
    assert services.timed_steps(db.session, utcnow()) == drill.startex
    at_startex = drill.startex + timedelta(seconds=1)
    # STARTEX is asked for; the injects get their times once it has run, so look again shortly.
    assert services.timed_steps(db.session, at_startex) == at_startex + services.STARTING_RECHECK
    keys = set(db.session.scalars(sa.select(FlowRequest.key)))
    assert rules.startex_key(drill.id) in keys

    services.start(db.session, drill.id, at_startex)
    # Started: the first three are due at once, the fourth ten minutes on.
    assert services.timed_steps(db.session, at_startex) == _due_at(drill, 4)
    endex = services.clock_of(drill).endex_due()
    assert endex is not None
    assert services.timed_steps(db.session, endex - timedelta(minutes=1)) == endex
    assert services.timed_steps(db.session, endex) is None
    assert rules.endex_key(drill.id) in set(db.session.scalars(sa.select(FlowRequest.key)))


def test_a_paused_drill_names_no_inject_and_no_endex(make_drill: Callable[..., Drill], controller) -> None:
    drill = make_drill(csv=TOGETHER)
    start = utcnow() - timedelta(seconds=1)
    services.start(db.session, drill.id, start)
    services.pause(db.session, controller, drill.id, now=start)
    assert services.timed_steps(db.session, utcnow()) is None
    assert _inject_requests(drill) == []
