"""Costs of commitments: the estimate from the package, the actual cost, both signatures, the freeze."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden
from hub.kernel.models import AuditEntry, Role, User
from hub.mutual_aid import costs, services
from hub.mutual_aid.models import AidCommitment
from tests.hub.mutual_aid.factories import CONTACT, entry, line


@pytest.fixture
def actors(app: Flask, make_user: Callable[..., User]) -> dict[str, Actor]:
    """Coordinators of Xuzhou (owner), Linyi (requester) and Zaozhuang, and a Linyi observer."""
    return {
        "xuzhou": Actor.for_user(make_user("xz", "xuzhou")),
        "linyi": Actor.for_user(make_user("ly", "linyi")),
        "zaozhuang": Actor.for_user(make_user("zz", "zaozhuang")),
        "observer": Actor.for_user(make_user("ly-obs", "linyi", Role.OBSERVER)),
    }


def _returned(actors: dict[str, Actor], incident_id: int | None = None) -> AidCommitment:
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    request = services.create_request(
        db.session,
        actors["linyi"],
        title="沂河洪水",
        lines=[line(quantity=8)],
        contact=CONTACT,
        incident_id=incident_id,
    )
    c = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, pumps.id, Decimal(4))
    services.accept(db.session, actors["linyi"], c.id)
    services.authorise(db.session, actors["xuzhou"], c.id, "XZ-1")
    services.dispatch(db.session, actors["xuzhou"], c.id)
    services.arrive(db.session, actors["linyi"], c.id)
    services.release(db.session, actors["linyi"], c.id)
    services.confirm_return(db.session, actors["xuzhou"], c.id)
    db.session.commit()
    return c


def _cost_audits() -> list[str]:
    found = db.session.scalars(
        sa.select(AuditEntry.action)
        .where(AuditEntry.action.like("aid_commitment.cost_%"))
        .order_by(AuditEntry.id)
    )
    return list(found)


def test_the_estimate_is_the_daily_rate_times_the_days(actors: dict[str, Actor]) -> None:
    c = _returned(actors)
    assert c.estimated_cost == Decimal("2400.00")  # 1200 a day for 48 hours
    assert c.actual_cost is None and not c.cost_frozen


def test_both_cities_sign_and_the_cost_freezes(actors: dict[str, Actor]) -> None:
    c = _returned(actors)
    costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("2650.50"), "燃油")
    costs.sign_cost(db.session, actors["xuzhou"], c.id)
    assert costs.signs_owed(c, actors["linyi"].city_id) and not costs.signs_owed(c, actors["xuzhou"].city_id)
    costs.sign_cost(db.session, actors["linyi"], c.id, costs.Side.REQUESTER)
    db.session.commit()
    assert c.cost_frozen and c.actual_cost == Decimal("2650.50") and c.requester_signed_by
    with pytest.raises(Conflict, match="frozen"):
        costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("1.00"))
    with pytest.raises(Conflict):
        costs.sign_cost(db.session, actors["linyi"], c.id)
    db.session.rollback()
    db.session.refresh(c)
    assert c.actual_cost == Decimal("2650.50")
    assert _cost_audits() == [
        "aid_commitment.cost_entered",
        "aid_commitment.cost_signed",
        "aid_commitment.cost_signed",
    ]


def test_each_city_acts_only_for_its_own_side(actors: dict[str, Actor]) -> None:
    c = _returned(actors)
    with pytest.raises(Forbidden):
        costs.enter_actual_cost(db.session, actors["linyi"], c.id, Decimal("10.00"))
    with pytest.raises(Forbidden):
        costs.enter_actual_cost(db.session, actors["zaozhuang"], c.id, Decimal("10.00"))
    costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("10.00"))
    db.session.commit()
    for who, side in (
        ("linyi", costs.Side.OWNER),
        ("xuzhou", costs.Side.REQUESTER),
        ("zaozhuang", None),
        ("observer", None),
    ):
        with pytest.raises(Forbidden):
            costs.sign_cost(db.session, actors[who], c.id, side)
    db.session.rollback()
    db.session.refresh(c)
    assert c.owner_signed_at is None and c.requester_signed_at is None
    assert _cost_audits() == ["aid_commitment.cost_entered"]


def test_the_actual_cost_waits_for_the_return_and_a_new_amount_takes_back_signatures(
    actors: dict[str, Actor],
) -> None:
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=8)], contact=CONTACT
    )
    offer = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, pumps.id, Decimal(2))
    with pytest.raises(Conflict, match="after the return"):
        costs.enter_actual_cost(db.session, actors["xuzhou"], offer.id, Decimal("5.00"))
    with pytest.raises(Conflict, match="not entered"):
        costs.sign_cost(db.session, actors["linyi"], offer.id)
    db.session.rollback()
    c = _returned(actors)
    costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("100.00"))
    costs.sign_cost(db.session, actors["linyi"], c.id)
    costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("120.00"))
    assert c.requester_signed_at is None and not c.cost_frozen


def test_signatures_owed_are_on_the_desk(actors: dict[str, Actor]) -> None:
    c = _returned(actors)
    costs.enter_actual_cost(db.session, actors["xuzhou"], c.id, Decimal("99.00"))
    db.session.commit()

    def owed(city: str) -> list[services.Owed]:
        return [i.kind for i in services.owed(db.session, actors[city].city_id or 0)]

    assert services.Owed.SIGN in owed("xuzhou") and services.Owed.SIGN in owed("linyi")
    assert services.Owed.SIGN not in owed("zaozhuang")
    costs.sign_cost(db.session, actors["linyi"], c.id)
    assert services.Owed.SIGN not in owed("linyi") and services.Owed.SIGN in owed("xuzhou")
    costs.sign_cost(db.session, actors["xuzhou"], c.id)
    assert services.Owed.SIGN not in owed("xuzhou")


def test_costs_export_per_incident_and_per_city_and_year(actors: dict[str, Actor], make_incident) -> None:
    incident = make_incident("linyi")
    c = _returned(actors, incident_id=incident.id)
    rows = costs.csv_rows(costs.for_incident(db.session, incident.public_id))
    assert [r["commitment"] for r in rows] == [str(c.public_id)]
    assert (
        rows[0]["estimated_cost"] == "2400.00" and rows[0]["actual_cost"] == "" and rows[0]["frozen"] == "no"
    )
    year = c.start_at.year
    assert len(costs.for_city_year(db.session, "xuzhou", year)) == 1
    assert len(costs.for_city_year(db.session, "linyi", year)) == 1
    assert costs.for_city_year(db.session, "zaozhuang", year) == []
    assert costs.for_city_year(db.session, "xuzhou", year - 1) == []
