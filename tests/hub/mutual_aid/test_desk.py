"""What each city owes in mutual aid, with its deadline, on its desk."""

from __future__ import annotations

from decimal import Decimal

from hub.extensions import db
from hub.kernel.models import City
from hub.mutual_aid import desk, services
from tests.hub.mutual_aid.factories import FRESH_FOR
from tests.hub.mutual_aid.test_sourcing import CENTRES, _request, actors, registry  # noqa: F401


def _owed(slug: str, settings) -> list[tuple[str, bool]]:
    city_id = db.session.query(City.id).filter(City.slug == slug).scalar()
    items = desk.urgent(db.session, city_id, settings)
    return [(item.subject.kind.value, item.due_at is not None) for item in items]


def test_each_city_owes_its_own_step_with_a_deadline(registry, actors, settings) -> None:  # noqa: F811
    request = _request(actors)
    services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    db.session.commit()
    assert _owed("zaozhuang", settings) == [("answer", True)]
    assert _owed("xuzhou", settings) == []
    offer = services.make_offer(
        db.session, actors["zaozhuang"], request.lines[0].id, registry["zaozhuang"].id, Decimal(5)
    )
    db.session.commit()
    assert _owed("zaozhuang", settings) == []
    assert _owed("linyi", settings) == [("accept", True)]
    services.accept(db.session, actors["linyi"], offer.id)
    assert _owed("zaozhuang", settings) == [("authorise", True)]
    assert _owed("linyi", settings) == []
    services.authorise(db.session, actors["zaozhuang"], offer.id, "ZZ-7")
    services.dispatch(db.session, actors["zaozhuang"], offer.id)
    assert _owed("linyi", settings) == [("arrival", True)]
    services.arrive(db.session, actors["linyi"], offer.id)
    services.release(db.session, actors["linyi"], offer.id)
    assert _owed("zaozhuang", settings) == [("return", False)]
    services.confirm_return(db.session, actors["zaozhuang"], offer.id)
    assert _owed("zaozhuang", settings) == [] and _owed("linyi", settings) == []
    progress = services.progress(db.session, request)[0]
    assert (progress.requested, progress.returned) == (Decimal(20), Decimal(5))
