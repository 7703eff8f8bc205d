"""Who mutual aid waits on: per request, per city, what a city waits for, and the desk's token."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import City
from hub.mutual_aid import desk, services, waiting
from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, entry, line


@pytest.fixture
def actors(make_user) -> dict[str, Actor]:
    return {slug: Actor.for_user(make_user(slug[:2], slug)) for slug in ("xuzhou", "linyi", "zaozhuang")}


def _ids() -> dict[str, int]:
    return {c.slug: c.id for c in db.session.scalars(select(City))}


def test_a_request_says_who_it_waits_on_and_the_desk_token_moves(actors: dict[str, Actor]) -> None:
    ids = _ids()
    pumps = services.register_entry(db.session, actors["xuzhou"], entry())
    services.register_entry(db.session, actors["zaozhuang"], entry("zaozhuang", "pump-z"))
    request = services.create_request(
        db.session, actors["linyi"], title="沂河洪水", lines=[line(quantity=6)], contact=CONTACT
    )
    asked = services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    assert set(asked) == {"xuzhou", "zaozhuang"}
    before = desk.version(db.session)
    found = waiting.on_request(db.session, request)
    assert {(w.city.slug, w.item.kind.value) for w in found} == {
        ("xuzhou", "answer"),
        ("zaozhuang", "answer"),
    }
    assert all(w.item.due_at is not None and w.counterpart.slug == "linyi" for w in found)
    assert {w.city.slug for w in waiting.for_city(db.session, ids["linyi"])} == {"xuzhou", "zaozhuang"}

    offer = services.make_offer(db.session, actors["xuzhou"], request.lines[0].id, pumps.id, Decimal(6))
    services.decline_ask(db.session, actors["zaozhuang"], request.id)
    db.session.flush()
    after = desk.version(db.session)
    for slug in ("xuzhou", "linyi", "zaozhuang"):  # the asked city that declined follows the request too
        assert after[ids[slug]] != before.get(ids[slug]), slug
    assert after.get(ids["heze"]) == before.get(ids["heze"])
    found = waiting.on_request(db.session, request)
    assert [(w.city.slug, w.item.kind.value, w.counterpart.slug) for w in found] == [
        ("linyi", "accept", "xuzhou")
    ]
    assert [w.city.slug for w in waiting.for_city(db.session, ids["xuzhou"])] == ["linyi"]

    services.accept(db.session, actors["linyi"], offer.id)
    found = waiting.on_request(db.session, request)
    assert [(w.city.slug, w.item.kind.value) for w in found] == [("xuzhou", "authorise")]
    assert found[0].item.due_at == offer.accepted_at + services.HOLD_WINDOW
    assert waiting.for_city(db.session, ids["xuzhou"]) == []

    board = waiting.by_city(db.session, first=ids["zaozhuang"])
    assert board[0][0].slug == "zaozhuang" and len(board) == 10
    assert {c.slug: [w.item.kind.value for w in items] for c, items in board if items} == {
        "xuzhou": ["authorise"]
    }
