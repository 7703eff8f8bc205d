"""Mutual-aid services: own-city rules, the lifecycle through the rules, and the ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from contracts.mutual_aid import AidState
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.models import AuditEntry, Role, User
from hub.kernel.types import utcnow
from hub.mutual_aid import services
from hub.mutual_aid.models import AidCommitment, AidResource
from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, entry, line


@pytest.fixture
def actors(app: Flask, make_user: Callable[..., User]) -> dict[str, Actor]:
    """Coordinators of Xuzhou (owner), Linyi (requester) and Zaozhuang (a third city), and an observer."""
    return {
        "xuzhou": Actor.for_user(make_user("xz", "xuzhou")),
        "linyi": Actor.for_user(make_user("ly", "linyi")),
        "zaozhuang": Actor.for_user(make_user("zz", "zaozhuang")),
        "observer": Actor.for_user(make_user("xz-obs", "xuzhou", Role.OBSERVER)),
    }


def _ledger(entry_id: int) -> tuple[Decimal, Decimal, Decimal]:
    resource = db.session.get(AidResource, entry_id)
    assert resource is not None
    db.session.refresh(resource)
    return resource.on_hand, resource.reserved, resource.deployed


def _offer(actors: dict[str, Actor], quantity: int = 4, *, exercise: bool = False) -> AidCommitment:
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    request = services.create_request(
        db.session,
        actors["linyi"],
        title="沂河洪水",
        lines=[line(quantity=8)],
        contact=CONTACT,
        exercise=exercise,
    )
    offer = services.make_offer(
        db.session, actors["xuzhou"], request.lines[0].id, pumps.id, Decimal(quantity)
    )
    db.session.commit()
    return offer


def test_a_city_keeps_only_its_own_registry(actors: dict[str, Actor]) -> None:
    with pytest.raises(Forbidden):
        services.register_entry(db.session, actors["linyi"], entry(owner="xuzhou"))
    with pytest.raises(Forbidden):
        services.register_entry(db.session, actors["observer"], entry(owner="xuzhou"))
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AidResource)) == 0


def test_registering_twice_updates_the_entry_and_audits(actors: dict[str, Actor]) -> None:
    first = services.register_entry(db.session, actors["xuzhou"], entry())
    again = services.register_entry(db.session, actors["xuzhou"], entry(quantity=Decimal(12), name="大泵"))
    db.session.commit()
    assert again.id == first.id and again.on_hand == Decimal(12) and again.name == "大泵"
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.entity_type == "aid_resource"))
    assert list(actions) == ["aid_resource.registered", "aid_resource.updated"]


def test_on_hand_cannot_fall_below_what_is_held(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=6)
    services.accept(db.session, actors["linyi"], offer.id)
    db.session.commit()
    with pytest.raises(Conflict, match=r"6\.000 reserved"):
        services.register_entry(db.session, actors["xuzhou"], entry(quantity=Decimal(5)))
    db.session.rollback()
    assert _ledger(offer.resource_id) == (Decimal(10), Decimal(6), Decimal(0))


def test_the_requester_city_comes_from_the_actor(actors: dict[str, Actor]) -> None:
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line()], contact=CONTACT
    )
    assert request.requesting_city_id == actors["linyi"].city_id


def test_ranking_leaves_out_the_requesting_city_and_what_does_not_fit(actors: dict[str, Actor]) -> None:
    services.register_entry(db.session, actors["xuzhou"], entry(external_id="xz-pump"))
    services.register_entry(db.session, actors["zaozhuang"], entry(owner="zaozhuang", external_id="zz-pump"))
    services.register_entry(db.session, actors["linyi"], entry(owner="linyi", external_id="ly-pump"))
    services.register_entry(
        db.session, actors["xuzhou"], entry(external_id="xz-tent", type_code="supply.tent.summer")
    )
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line()], contact=CONTACT
    )
    ranked = services.rank_candidates(db.session, request.lines[0].id, fresh_for=FRESH_FOR)
    assert {r.candidate.owner_city for r in ranked} == {"xuzhou", "zaozhuang"}
    assert all(r.candidate.type.code == "equipment.pump.drainage" for r in ranked)
    assert ranked == sorted(ranked, key=lambda r: r.key)


def test_ranking_counts_a_verification_fresh_for_the_set_days(actors: dict[str, Actor]) -> None:
    now = utcnow()
    near = services.register_entry(
        db.session,
        actors["zaozhuang"],
        entry(
            owner="zaozhuang",
            external_id="zz-pump",
            location={"lat": 34.856, "lon": 117.558},
            verified_at=now - timedelta(days=10),
        ),
    )
    far = services.register_entry(db.session, actors["xuzhou"], entry(external_id="xz-pump"))  # a day old
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line()], contact=CONTACT
    )
    line_id = request.lines[0].id
    month = services.rank_candidates(db.session, line_id, fresh_for=timedelta(days=30), now=now)
    assert [(r.candidate.resource_id, r.fresh) for r in month] == [(str(near.id), True), (str(far.id), True)]
    # HUB_AID_VERIFY_DAYS=5: the nearer entry, verified ten days ago, is stale and ranks after.
    week = services.rank_candidates(db.session, line_id, fresh_for=timedelta(days=5), now=now)
    assert [(r.candidate.resource_id, r.fresh) for r in week] == [(str(far.id), True), (str(near.id), False)]


def test_a_city_offers_only_its_own_resources(actors: dict[str, Actor]) -> None:
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line()], contact=CONTACT
    )
    with pytest.raises(Forbidden):
        services.make_offer(db.session, actors["zaozhuang"], request.lines[0].id, pumps.id, Decimal(1))


def test_the_whole_lifecycle_moves_the_ledger(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=4)
    resource_id = offer.resource_id
    services.accept(db.session, actors["linyi"], offer.id)
    assert _ledger(resource_id) == (Decimal(10), Decimal(4), Decimal(0))
    services.authorise(db.session, actors["xuzhou"], offer.id, "XZ-2026-118")
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    assert _ledger(resource_id) == (Decimal(10), Decimal(0), Decimal(4))
    services.arrive(db.session, actors["linyi"], offer.id)
    services.release(db.session, actors["linyi"], offer.id)
    assert _ledger(resource_id) == (Decimal(10), Decimal(0), Decimal(4))  # on its way home
    done = services.confirm_return(
        db.session, actors["xuzhou"], offer.id, services.ReturnCounts(consumed=Decimal(1), lost=Decimal(0))
    )
    db.session.commit()
    assert (
        done.state == AidState.RETURNED and done.returned == Decimal(3) and done.order_number == "XZ-2026-118"
    )
    assert _ledger(resource_id) == (Decimal(9), Decimal(0), Decimal(0))
    moves = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.entity_type == "aid_commitment").order_by(AuditEntry.id)
    )
    assert [m.removeprefix("aid_commitment.") for m in moves] == [
        "offered",
        "accept",
        "authorise",
        "dispatch",
        "arrive",
        "release",
        "confirm_return",
    ]


def test_moves_by_the_wrong_side_or_city_are_forbidden(actors: dict[str, Actor]) -> None:
    offer = _offer(actors)
    with pytest.raises(Forbidden):
        services.accept(db.session, actors["xuzhou"], offer.id)  # the owner cannot accept its own offer
    with pytest.raises(Forbidden):
        services.accept(db.session, actors["zaozhuang"], offer.id)  # not a party
    with pytest.raises(Forbidden):
        services.expire(db.session, actors["linyi"], offer.id)  # the hub's timers only
    db.session.rollback()
    assert db.session.get(AidCommitment, offer.id).state == AidState.OFFERED  # type: ignore[union-attr]
    assert _ledger(offer.resource_id)[1] == 0


def test_illegal_transitions_are_conflicts(actors: dict[str, Actor]) -> None:
    offer = _offer(actors)
    with pytest.raises(Conflict, match="cannot go from 'offered'"):
        services.dispatch(db.session, actors["xuzhou"], offer.id)
    services.accept(db.session, actors["linyi"], offer.id)
    services.authorise(db.session, actors["xuzhou"], offer.id, "XZ-1")
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    with pytest.raises(Conflict, match="cannot go from 'dispatched'"):
        services.cancel(db.session, actors["linyi"], offer.id)


def test_cancel_and_expire_give_the_hold_back(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=3)
    services.accept(db.session, actors["linyi"], offer.id)
    services.cancel(db.session, actors["xuzhou"], offer.id)
    assert _ledger(offer.resource_id) == (Decimal(10), Decimal(0), Decimal(0))
    request_line = offer.line_id
    second = services.make_offer(db.session, actors["xuzhou"], request_line, offer.resource_id, Decimal(2))
    services.accept(db.session, actors["linyi"], second.id)
    services.expire(db.session, Actor.system(), second.id)
    db.session.commit()
    assert second.state == AidState.EXPIRED
    assert _ledger(offer.resource_id) == (Decimal(10), Decimal(0), Decimal(0))


def test_accepting_more_than_is_left_is_a_conflict_naming_what_is_left(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=8)
    second = services.make_offer(db.session, actors["xuzhou"], offer.line_id, offer.resource_id, Decimal(4))
    services.accept(db.session, actors["linyi"], offer.id)
    db.session.commit()
    with pytest.raises(Conflict, match=r"only 2\.000 is available") as refused:
        # The line asks for 8; raise it so the ledger, not the line, is what refuses.
        offer.line.quantity = Decimal(20)
        services.accept(db.session, actors["linyi"], second.id)
    assert refused.value.details == {"asked": "4.000", "available": "2.000"}
    db.session.rollback()
    assert db.session.get(AidCommitment, second.id).state == AidState.OFFERED  # type: ignore[union-attr]


def test_a_line_is_not_filled_beyond_its_quantity(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=6)
    second = services.make_offer(db.session, actors["xuzhou"], offer.line_id, offer.resource_id, Decimal(3))
    services.accept(db.session, actors["linyi"], offer.id)
    with pytest.raises(Conflict, match="the line asks for 8"):
        services.accept(db.session, actors["linyi"], second.id)


def test_an_exercise_never_touches_the_ledger(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=5, exercise=True)
    services.accept(db.session, actors["linyi"], offer.id)
    services.authorise(db.session, actors["xuzhou"], offer.id, "DRILL-1")
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    assert _ledger(offer.resource_id) == (Decimal(10), Decimal(0), Decimal(0))
    services.arrive(db.session, actors["linyi"], offer.id)
    services.release(db.session, actors["linyi"], offer.id)
    services.confirm_return(db.session, actors["xuzhou"], offer.id, services.ReturnCounts(lost=Decimal(1)))
    db.session.commit()
    assert _ledger(offer.resource_id) == (Decimal(10), Decimal(0), Decimal(0))


def test_an_unbalanced_return_is_refused(actors: dict[str, Actor]) -> None:
    offer = _offer(actors, quantity=4)
    services.accept(db.session, actors["linyi"], offer.id)
    services.authorise(db.session, actors["xuzhou"], offer.id, "XZ-2")
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    services.arrive(db.session, actors["linyi"], offer.id)
    services.release(db.session, actors["linyi"], offer.id)
    with pytest.raises(InvalidInput, match="were dispatched"):
        services.confirm_return(
            db.session,
            actors["xuzhou"],
            offer.id,
            services.ReturnCounts(returned=Decimal(4), lost=Decimal(1)),
        )


def test_a_team_is_not_booked_twice_for_overlapping_times(actors: dict[str, Actor]) -> None:
    team = services.register_entry(
        db.session, actors["xuzhou"], entry(external_id="usar-1", type_code="team.usar")
    )
    first = services.create_request(
        db.session,
        actors["linyi"],
        title="倒塌",
        lines=[line(type_code="team.usar", quantity=1)],
        contact=CONTACT,
    )
    second = services.create_request(
        db.session,
        actors["linyi"],
        title="倒塌二",
        lines=[line(type_code="team.usar", quantity=1)],
        contact=CONTACT,
    )
    a = services.make_offer(db.session, actors["xuzhou"], first.lines[0].id, team.id, Decimal(1))
    b = services.make_offer(db.session, actors["xuzhou"], second.lines[0].id, team.id, Decimal(1))
    services.accept(db.session, actors["linyi"], a.id)
    db.session.commit()
    with pytest.raises(Conflict):
        services.accept(db.session, actors["linyi"], b.id)
    db.session.rollback()
    assert _ledger(team.id) == (Decimal(1), Decimal(1), Decimal(0))


def test_the_overlap_check_names_the_other_booking(actors: dict[str, Actor]) -> None:
    """With the ledger's count aside (two units on hand), the window check alone refuses an overlap."""
    team = services.register_entry(
        db.session, actors["xuzhou"], entry(external_id="usar-2", type_code="team.usar")
    )
    request = services.create_request(
        db.session,
        actors["linyi"],
        title="倒塌",
        lines=[line(type_code="team.usar", quantity=2)],
        contact=CONTACT,
    )
    a = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, team.id, Decimal(1))
    b = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, team.id, Decimal(1))
    services.accept(db.session, actors["linyi"], a.id)
    db.session.commit()
    # Bypass the registry's "one unit per team" to reach the second line of defence.
    db.session.execute(sa.update(AidResource).where(AidResource.id == team.id).values(on_hand=Decimal(2)))
    with pytest.raises(Conflict, match="already booked"):
        services.accept(db.session, actors["linyi"], b.id)
    db.session.rollback()
    db.session.execute(sa.update(AidResource).where(AidResource.id == team.id).values(on_hand=Decimal(2)))
    later = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, team.id, Decimal(1))
    later.start_at, later.end_at = a.end_at, a.end_at + timedelta(hours=4)
    services.accept(db.session, actors["linyi"], later.id)  # back to back is no overlap
    db.session.commit()


def test_an_overlapping_booking_is_refused_by_the_database_or_the_service(actors: dict[str, Actor]) -> None:
    """PostgreSQL's exclusion constraint holds even for a write that skips the service's check;
    SQLite has no such constraint, and there the service's check inside the write refuses it."""
    team = services.register_entry(
        db.session, actors["xuzhou"], entry(external_id="usar-3", type_code="team.usar")
    )
    request = services.create_request(
        db.session,
        actors["linyi"],
        title="倒塌",
        lines=[line(type_code="team.usar", quantity=2)],
        contact=CONTACT,
    )
    a = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, team.id, Decimal(1))
    b = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, team.id, Decimal(1))
    services.accept(db.session, actors["linyi"], a.id)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.IntegrityError, match="ex_aid_commitments_no_double_booking"):
            db.session.execute(
                sa.update(AidCommitment).where(AidCommitment.id == b.id).values(state="accepted")
            )
        db.session.rollback()
    else:
        with pytest.raises(Conflict):
            services.accept(db.session, actors["linyi"], b.id)
        db.session.rollback()
    assert db.session.get(AidCommitment, b.id).state == "offered"


def _on_scene(actors: dict[str, Actor]) -> AidCommitment:
    offer = _offer(actors, quantity=2)
    services.accept(db.session, actors["linyi"], offer.id)
    services.authorise(db.session, actors["xuzhou"], offer.id, "XZ-3")
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    return services.arrive(db.session, actors["linyi"], offer.id)


def test_an_extension_is_asked_and_answered(actors: dict[str, Actor]) -> None:
    commitment = _on_scene(actors)
    end = commitment.end_at
    with pytest.raises(Forbidden):
        services.ask_extension(db.session, actors["xuzhou"], commitment.id)
    services.ask_extension(db.session, actors["linyi"], commitment.id)
    with pytest.raises(InvalidInput):
        services.answer_extension(db.session, actors["xuzhou"], commitment.id, end - timedelta(hours=1))
    services.answer_extension(db.session, actors["xuzhou"], commitment.id, end + timedelta(days=1))
    assert commitment.state == AidState.ARRIVED and commitment.end_at == end + timedelta(days=1)
    services.ask_extension(db.session, actors["linyi"], commitment.id)
    services.answer_extension(db.session, actors["xuzhou"], commitment.id, None)  # refused: the end stays
    assert commitment.state == AidState.ARRIVED and commitment.end_at == end + timedelta(days=1)


def test_a_return_is_asked_refused_then_released(actors: dict[str, Actor]) -> None:
    commitment = _on_scene(actors)
    services.request_return(db.session, actors["xuzhou"], commitment.id)
    services.refuse_return(db.session, actors["linyi"], commitment.id)
    services.request_return(db.session, actors["xuzhou"], commitment.id)
    services.release(db.session, actors["linyi"], commitment.id)
    services.confirm_return(db.session, actors["xuzhou"], commitment.id)
    db.session.commit()
    assert commitment.state == AidState.RETURNED
    assert _ledger(commitment.resource_id) == (Decimal(10), Decimal(0), Decimal(0))
