"""The demo registry: every city holds a plausible stock, and seeding again adds nothing."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from hub.extensions import db
from hub.mutual_aid.models import AidResource
from hub.mutual_aid.seed import DEMO_STOCK, seed_demo_registry


def test_each_city_gets_its_stock_once(app) -> None:
    assert seed_demo_registry(db.session) == 10 * len(DEMO_STOCK)
    db.session.commit()
    assert seed_demo_registry(db.session) == 0
    entries = db.session.scalars(sa.select(AidResource)).all()
    per_city = Counter(e.owner_city.slug for e in entries)
    assert set(per_city.values()) == {len(DEMO_STOCK)} and len(per_city) == 10
    kinds = {e.kind for e in entries}
    assert kinds >= {"rescue_team", "equipment", "supplies", "shelter", "expert", "vehicle"}
    pumps = [e for e in entries if e.type_code == "equipment.pump.drainage"]
    assert len({e.on_hand for e in pumps}) > 1 and all(e.package_daily_rate for e in pumps)


def test_linyi_flood_finds_pumps_in_its_neighbours_first(app, make_user) -> None:
    from decimal import Decimal

    from hub.kernel.actors import Actor
    from hub.mutual_aid import services
    from tests.hub.mutual_aid.factories import CONTACT, FRESH_FOR, line

    seed_demo_registry(db.session)
    linyi = Actor.for_user(make_user("ly", "linyi"))
    request = services.create_request(
        db.session,
        linyi,
        title="沂河洪水",
        lines=[line(quantity=30), line("L2", "equipment.boat.assault", quantity=20)],
        contact=CONTACT,
    )
    asked = services.ask_ring(db.session, request.id, 0, fresh_for=FRESH_FOR)
    assert asked and "linyi" not in asked
    assert set(asked) <= {"zaozhuang", "lianyungang", "xuzhou", "suqian", "jining"}
    assert services.rank_candidates(db.session, request.lines[0].id, fresh_for=FRESH_FOR)[
        0
    ].candidate.available > Decimal(0)
