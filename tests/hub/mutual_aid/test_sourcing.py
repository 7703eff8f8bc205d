"""Sourcing in rings and the timers: every step keyed, asked once, expired and alerted once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from contracts.mutual_aid import AidState, GeoPoint
from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import VehicleCommand
from hub.kernel.actors import Actor
from hub.kernel.models import City, FlowRequest, MqttOutbox, Reminder, User
from hub.kernel.types import utcnow
from hub.mutual_aid import services
from hub.mutual_aid.models import AidRequest, AidResource
from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, entry, line

CENTRES = {
    "xuzhou": GeoPoint(lat=34.262, lon=117.185),
    "zaozhuang": GeoPoint(lat=34.856, lon=117.558),
    "lianyungang": GeoPoint(lat=34.6, lon=119.179),
    "heze": GeoPoint(lat=35.247, lon=115.469),
}


@pytest.fixture
def actors(app: Flask, make_user: Callable[..., User]) -> dict[str, Actor]:
    return {slug: Actor.for_user(make_user(f"u-{slug}", slug)) for slug in ("linyi", *CENTRES)}


@pytest.fixture
def registry(actors: dict[str, Actor]) -> dict[str, AidResource]:
    """Drainage pumps in four cities, at their centres."""
    found = {
        slug: services.register_entry(db.session, actors[slug], entry(owner=slug, location=point))
        for slug, point in CENTRES.items()
    }
    db.session.commit()
    return found


def _request(actors: dict[str, Actor], quantity: int = 20) -> AidRequest:
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=quantity)], contact=CONTACT
    )
    db.session.commit()
    return request


def _keys() -> list[str]:
    return sorted(db.session.scalars(sa.select(FlowRequest.key)))


def _asked(request: AidRequest) -> dict[str, int]:
    return {a.city.slug: a.ring for a in services.asks(db.session, request.id)}


def test_a_new_request_asks_for_its_first_ring_once(registry, actors) -> None:
    request = _request(actors)
    assert _keys() == [f"aid:{request.id}:ring:0"]
    again = services.ring_key(request.id, 0)
    from hub.kernel import flow_requests

    flow_requests.enqueue(db.session, services.SOURCE, key=again, parameters={})
    assert _keys() == [f"aid:{request.id}:ring:0"]


def test_rings_ask_the_nearest_cities_first_and_nobody_twice(registry, actors) -> None:
    request = _request(actors)
    assert sorted(services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)) == [
        "lianyungang",
        "zaozhuang",
    ]
    assert services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR) == []
    assert services.ask_ring(db.session, request.id, 1, fresh_for=FRESH_FOR) == ["xuzhou"]
    assert services.ask_ring(db.session, request.id, 9, fresh_for=FRESH_FOR) == []
    db.session.commit()
    assert _asked(request) == {"lianyungang": 0, "zaozhuang": 0, "xuzhou": 1}
    ask = services.asks(db.session, request.id)[0]
    assert ask.deadline - ask.asked_at == services.ASK_WINDOW


def test_an_unanswered_ring_widens_after_its_deadline_only(registry, actors, settings) -> None:
    request = _request(actors)
    services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    db.session.commit()
    now = utcnow()
    services.schedule_rings(db.session, now, settings)
    assert f"aid:{request.id}:ring:1" not in _keys()
    later = now + services.ASK_WINDOW + timedelta(seconds=1)
    services.schedule_rings(db.session, later, settings)
    services.schedule_rings(db.session, later, settings)
    db.session.commit()
    assert _keys().count(f"aid:{request.id}:ring:1") == 1


def test_a_covered_request_does_not_widen(registry, actors, settings) -> None:
    request = _request(actors, quantity=10)
    services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    services.make_offer(
        db.session, actors["zaozhuang"], request.lines[0].id, registry["zaozhuang"].id, Decimal(10)
    )
    db.session.commit()
    answers = {a.city.slug: a.answer for a in services.asks(db.session, request.id)}
    assert answers == {"zaozhuang": "offered", "lianyungang": None}
    services.schedule_rings(db.session, utcnow() + timedelta(hours=1), settings)
    assert f"aid:{request.id}:ring:1" not in _keys()


def test_a_ring_that_declined_widens_at_once(registry, actors, settings) -> None:
    request = _request(actors)
    services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    services.decline_ask(db.session, actors["zaozhuang"], request.id)
    services.decline_ask(db.session, actors["lianyungang"], request.id)
    db.session.commit()
    services.schedule_rings(db.session, utcnow(), settings)
    assert f"aid:{request.id}:ring:1" in _keys()


def test_a_silent_city_is_reminded_once_near_its_deadline(registry, actors, settings) -> None:
    request = _request(actors)
    services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    services.decline_ask(db.session, actors["lianyungang"], request.id)
    db.session.commit()
    services.schedule_reminders(db.session, utcnow(), settings)
    assert not [k for k in _keys() if k.endswith(":remind")]
    near = utcnow() + services.ASK_WINDOW - services.REMIND_BEFORE + timedelta(seconds=1)
    services.schedule_reminders(db.session, near, settings)
    services.schedule_reminders(db.session, near, settings)
    reminds = db.session.scalars(sa.select(FlowRequest).where(FlowRequest.flow_name == services.REMIND)).all()
    assert len(reminds) == 1
    ask_id = reminds[0].parameters["ask_id"]
    assert services.remind_ask(db.session, ask_id) is True
    assert services.remind_ask(db.session, ask_id) is False
    db.session.commit()
    reminder = db.session.scalars(sa.select(Reminder)).one()
    assert (reminder.kind, reminder.city.slug) == ("aid_ask", "zaozhuang")


def _accepted(registry, actors, request: AidRequest):
    offer = services.make_offer(
        db.session, actors["zaozhuang"], request.lines[0].id, registry["zaozhuang"].id, Decimal(4)
    )
    services.accept(db.session, actors["linyi"], offer.id)
    db.session.commit()
    return offer


def test_an_unauthorised_hold_expires_and_gives_its_reservation_back(registry, actors, settings) -> None:
    offer = _accepted(registry, actors, _request(actors))
    assert registry["zaozhuang"].reserved == Decimal(4)
    services.schedule_expiries(db.session, utcnow(), settings)
    assert not [k for k in _keys() if "expire" in k]
    late = utcnow() + services.HOLD_WINDOW + timedelta(seconds=1)
    services.schedule_expiries(db.session, late, settings)
    services.schedule_expiries(db.session, late, settings)
    assert [k for k in _keys() if "expire" in k] == [f"aid:{offer.id}:expire-hold"]
    assert services.expire_if_due(db.session, offer.id, now=utcnow()) is False
    assert services.expire_if_due(db.session, offer.id, now=late) is True
    assert services.expire_if_due(db.session, offer.id, now=late) is False
    db.session.commit()
    db.session.refresh(registry["zaozhuang"])
    assert offer.state == AidState.EXPIRED.value
    assert registry["zaozhuang"].reserved == Decimal(0)


def test_an_authorised_hold_does_not_expire(registry, actors) -> None:
    offer = _accepted(registry, actors, _request(actors))
    services.authorise(db.session, actors["zaozhuang"], offer.id, "ZZ-2026-001")
    db.session.commit()
    late = utcnow() + services.HOLD_WINDOW * 2
    assert services.expire_if_due(db.session, offer.id, now=late) is False
    assert offer.state == AidState.AUTHORISED.value


def test_an_overdue_arrival_alerts_the_requester_once(registry, actors, settings) -> None:
    offer = _accepted(registry, actors, _request(actors))
    services.authorise(db.session, actors["zaozhuang"], offer.id, "ZZ-2026-002")
    services.dispatch(db.session, actors["zaozhuang"], offer.id)
    db.session.commit()
    expected = services.expected_arrival(offer)
    assert expected is not None and expected >= offer.start_at
    services.schedule_overdue(db.session, utcnow(), settings)
    assert not [k for k in _keys() if k.endswith(":overdue")]
    services.schedule_overdue(db.session, expected + services.ARRIVAL_GRACE, settings)
    assert [k for k in _keys() if k.endswith(":overdue")] == [f"aid:{offer.id}:overdue"]
    assert services.alert_overdue_arrival(db.session, offer.id) is True
    assert services.alert_overdue_arrival(db.session, offer.id) is False
    db.session.commit()
    linyi = db.session.scalars(sa.select(City.id).where(City.slug == "linyi")).one()
    assert services.overdue_alerts(db.session, linyi) == {offer.id}


def test_dispatching_a_fleet_vehicle_sends_it_an_expiring_command(actors, city) -> None:
    truck, _ = fleet.register_vehicle(db.session, actors["xuzhou"], city("xuzhou"), "drain-01", "排水车")
    vehicle = services.register_entry(
        db.session,
        actors["xuzhou"],
        entry(
            owner="xuzhou", external_id="drain-01", type_code="vehicle.drainage", location=CENTRES["xuzhou"]
        ),
    )
    request = services.create_request(
        db.session,
        actors["linyi"],
        title="沂河洪水",
        lines=[line(type_code="vehicle.drainage", quantity=1)],
        contact=CONTACT,
    )
    offer = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, vehicle.id, Decimal(1))
    services.accept(db.session, actors["linyi"], offer.id)
    services.authorise(db.session, actors["xuzhou"], offer.id, "XZ-9")
    services.dispatch(db.session, actors["xuzhou"], offer.id)
    db.session.commit()
    command = db.session.scalars(sa.select(VehicleCommand)).one()
    assert command.vehicle_id == truck.id and command.kind == "goto"
    assert command.expires_at - command.issued_at == services.DISPATCH_COMMAND_TTL
    assert command.arguments["lat"] == pytest.approx(request.lines[0].report_to_lat)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MqttOutbox)) == 1
