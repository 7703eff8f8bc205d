"""The demo's Linyi flood: the rings find Xuzhou, Zaozhuang and Lianyungang, and the hub plays them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden
from hub.kernel.models import FlowRequest
from hub.kernel.types import utcnow
from hub.mutual_aid import demo, services
from hub.mutual_aid.models import AidCommitment, AidResource
from hub.mutual_aid.seed import seed_demo_registry
from tests.hub.mutual_aid.factories import FRESH_FOR


def _states(request_id: int) -> dict[str, str]:
    rows = db.session.scalars(sa.select(AidCommitment).where(AidCommitment.request_id == request_id))
    return {f"{c.owner_city.slug}:{c.line.line_id}": c.state for c in rows}


def test_the_linyi_flood_is_answered_by_the_three_neighbours(app, make_user, settings) -> None:
    seed_demo_registry(db.session)
    assert demo.seed_flood_depots(db.session) == len(demo.FLOOD_DEPOTS)
    assert demo.seed_flood_depots(db.session) == 0
    linyi = Actor.for_user(make_user("ly", "linyi"))
    with pytest.raises(Forbidden):
        demo.start_linyi_flood(db.session, Actor.for_user(make_user("xz", "xuzhou")))
    request = demo.start_linyi_flood(db.session, linyi)
    assert request.incident_id is not None and [ln.type_code for ln in request.lines] == [
        "equipment.pump.drainage",
        "equipment.boat.assault",
    ]
    # The first ring is exactly the three neighbours the scenario names.
    assert set(services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)) == set(demo.PARTNERS)

    # Only the demo asks for the neighbours' moves, once per slot.
    now = utcnow()
    demo.schedule_partners(db.session, now, settings)
    assert db.session.scalars(sa.select(FlowRequest).where(FlowRequest.flow_name == demo.PLAY)).all() == []
    demo_settings = replace(settings, demo=True)
    demo.schedule_partners(db.session, now, demo_settings)
    demo.schedule_partners(db.session, now, demo_settings)
    plays = db.session.scalars(sa.select(FlowRequest).where(FlowRequest.flow_name == demo.PLAY)).all()
    assert len(plays) == 1

    # Nothing before the pace; then each asked neighbour answers from its stock.
    assert demo.play_partners(db.session, now=now) == []
    later = now + demo.PACE + timedelta(seconds=1)
    done = demo.play_partners(db.session, now=later)
    assert done and all(city in "".join(done) for city in demo.PARTNERS)
    progress = {p.line.line_id: p for p in services.progress(db.session, request)}
    assert progress["L1"].offered == Decimal(20) and progress["L2"].offered == Decimal(12)
    # Each neighbour offers its share of each line, its depot near Linyi first.
    assert {key.split(":")[0] for key in _states(request.id)} == set(demo.PARTNERS)
    assert len(_states(request.id)) == 6
    offered = db.session.scalars(sa.select(AidCommitment).where(AidCommitment.request_id == request.id))
    assert {c.resource.external_id for c in offered} == {d.external_id for d in demo.FLOOD_DEPOTS}
    assert demo.play_partners(db.session, now=later) == []  # nothing twice

    # Linyi accepts everything; the owners authorise, then dispatch, each after the pace.
    for commitment in db.session.scalars(
        sa.select(AidCommitment).where(AidCommitment.request_id == request.id)
    ):
        services.accept(db.session, linyi, commitment.id)
    db.session.flush()
    step = later + demo.PACE * 2
    demo.play_partners(db.session, now=step)
    assert set(_states(request.id).values()) == {"authorised"}
    assert all(c.order_number for c in db.session.scalars(sa.select(AidCommitment)))
    demo.play_partners(db.session, now=step + demo.PACE * 2)
    assert set(_states(request.id).values()) == {"dispatched"}
    progress = {p.line.line_id: p for p in services.progress(db.session, request)}
    assert progress["L1"].en_route == Decimal(20) and progress["L2"].en_route == Decimal(12)

    # Linyi confirms one arrival, asks to keep it longer and releases another: the owners answer.
    first, second, *_ = db.session.scalars(
        sa.select(AidCommitment).where(AidCommitment.request_id == request.id).order_by(AidCommitment.id)
    ).all()
    for commitment in (first, second):
        services.arrive(db.session, linyi, commitment.id)
    wanted = first.end_at + timedelta(hours=12)
    services.ask_extension(db.session, linyi, first.id, wanted)
    services.release(db.session, linyi, second.id)
    db.session.flush()
    demo.play_partners(db.session, now=step + demo.PACE * 4)
    db.session.expire_all()
    assert (first.state, first.end_at) == ("arrived", wanted)
    assert second.state == "returned" and second.returned == second.dispatched
    entry = db.session.get(AidResource, second.resource_id)
    assert entry.deployed == 0 and entry.available == entry.on_hand
