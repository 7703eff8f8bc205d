"""The ranking the database filters and cuts is the plain rule's, on random registries.

`services.rank_candidates` asks the database for the entries that may fill a line and, per city,
only the first few of each (fit, freshness) group by distance; `rules.rank_candidates` ranks a
list of every entry in Python. Each seed writes a random registry (types that stand in for
others, graded and ungraded entries, entries out of service or fully held, verifications on
both sides of the freshness limit, entries sharing a place so that distances tie and ids above
9 so that the ids' string order matters) and compares the two, cut and uncut, and the rings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from contracts.mutual_aid import GeoPoint
from contracts.resource_types import CATALOGUE, Grade, TypeRef
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import City, User
from hub.kernel.types import table_of, utcnow
from hub.mutual_aid import rules, services
from hub.mutual_aid.models import AidRequest, AidResource, AidResourceCell
from tests.hub.mutual_aid.factories import CONTACT, XUZHOU, entry, line

CITIES = ("linyi", "xuzhou", "zaozhuang", "lianyungang", "heze", "suqian")
TYPES = (
    ("equipment.pump.drainage", (None,)),
    ("team.usar", (1, 2, 3, None)),
    ("team.fire_rescue", (1, 2, 3)),  # stands in for team.usar
    ("team.water", (1, 2, 3)),
)
LINES = (
    ("P", "equipment.pump.drainage", None),
    ("U", "team.usar", None),
    ("U2", "team.usar", 2),
    ("W", "team.water", 2),
)


def _fill(rng: random.Random, size: int) -> list[tuple[float, float]]:
    """Write `size` random entries, spread over the cities, some of them on shared spots; return the spots."""
    now = utcnow()
    cities = list(db.session.scalars(sa.select(City).where(City.slug.in_(CITIES))))
    depots = [(c.latitude + rng.uniform(-0.5, 0.5), c.longitude + rng.uniform(-0.5, 0.5)) for c in cities]
    rows = []
    for n in range(size):
        owner = rng.choice(cities)
        code, grades = rng.choice(TYPES)
        row = CATALOGUE[code]
        on_hand = Decimal(1) if row.bookable else Decimal(rng.randint(1, 20))
        held = rng.choice((Decimal(0), Decimal(0), on_hand))  # a third of the entries have nothing left
        lat, lon = rng.choice(depots) if rng.random() < 0.3 else (rng.uniform(33, 36), rng.uniform(115, 120))
        rows.append(
            {
                "owner_city_id": owner.id,
                "external_id": f"e-{n}",
                "type_code": code,
                "kind": row.kind.value,
                "grade": rng.choice(grades),
                "bookable": row.bookable,
                "name": row.name_zh,
                "on_hand": on_hand,
                "reserved": held,
                "deployed": Decimal(0),
                "unit": row.unit,
                "lat": lat,
                "lon": lon,
                "status": "available" if rng.random() < 0.85 else "out_of_service",
                "contact_name": "值班室",
                "contact_phone": "0000000",
                "verified_at": now - timedelta(days=rng.choice((1, 29, 31, 45))),
                "verified_by": "test",
            }
        )
    db.session.execute(sa.insert(AidResource), rows)
    db.session.flush()
    return depots


def _plain(request: AidRequest, fresh_for: timedelta, now: object) -> dict[int, list[rules.Ranked]]:
    """Rank every line by the plain rule over every entry in service, read as whole rows."""
    everything = [
        rules.Candidate(
            resource_id=str(e.id),
            owner_city=e.owner_city.slug,
            type=TypeRef(e.type_code, Grade(e.grade) if e.grade is not None else None),
            available=e.available,
            lat=e.lat,
            lon=e.lon,
            verified_at=e.verified_at,
        )
        for e in db.session.scalars(sa.select(AidResource).where(AidResource.status == "available"))
    ]
    return {
        line.id: rules.rank_candidates(
            TypeRef(line.type_code, Grade(line.min_grade) if line.min_grade is not None else None),
            (line.report_to_lat, line.report_to_lon),
            everything,
            now=now,  # type: ignore[arg-type]
            requesting_city=request.requesting_city.slug,
            fresh_for=fresh_for,
        )
        for line in request.lines
    }


@pytest.fixture
def linyi(app: Flask, make_user: Callable[..., User]) -> Actor:
    return Actor.for_user(make_user("u-linyi", "linyi"))


@pytest.mark.parametrize("seed", range(10))
def test_the_database_ranking_is_the_plain_rule(linyi: Actor, seed: int) -> None:
    rng = random.Random(seed)
    depots = _fill(rng, rng.randint(150, 400))
    report_to = {"lat": rng.uniform(33.5, 35.5), "lon": rng.uniform(116, 119.5)}
    if seed >= 6:
        # The place is a shared spot: several entries at distance 0, tied, nearest of their cities.
        lat, lon = rng.choice(depots)
        report_to = {"lat": lat, "lon": lon}
    request = services.create_request(
        db.session,
        linyi,
        title="随机登记册",
        lines=[
            line(
                lid,
                type_code=code,
                quantity=3,
                min_grade=grade,
                report_to={"place": "现场", "point": report_to},
            )
            for lid, code, grade in LINES
        ],
        contact=CONTACT,
    )
    now = utcnow()
    fresh_for = timedelta(days=rng.choice((7, 30, 40)))
    plain = _plain(request, fresh_for, now)
    assert any(len(ranked) > 20 for ranked in plain.values()), "the registry gave too few candidates"
    for line_ in request.lines:
        whole = services.rank_candidates(db.session, line_.id, fresh_for=fresh_for, now=now, per_city=None)
        assert whole == plain[line_.id]
        for per_city in (1, 2, 3, 10):
            cut = services.rank_candidates(
                db.session, line_.id, fresh_for=fresh_for, now=now, per_city=per_city
            )
            assert cut == rules.shortlist(plain[line_.id], per_city)

    found = services.sourcing_rings(db.session, request, fresh_for=fresh_for, now=now)
    expected = rules.rings([r for ranked in plain.values() for r in ranked])
    assert [(r.index, r.max_km, r.cities) for r in found] == [(r.index, r.max_km, r.cities) for r in expected]


def test_a_shortlist_keeps_each_citys_best_and_its_nearest() -> None:
    now = utcnow()

    def ranked(rid: str, city: str, fit: int, km: float) -> rules.Ranked:
        candidate = rules.Candidate(rid, city, TypeRef("team.usar"), Decimal(1), 34.0, 117.0, now)
        return rules.Ranked(candidate, fit, True, km)

    best = ranked("1", "xuzhou", 0, 300.0)
    second = ranked("2", "xuzhou", 0, 310.0)
    near = ranked("3", "xuzhou", 2, 20.0)  # a stand-in, near: ranks last but places the city
    other = ranked("4", "heze", 0, 150.0)
    everything = sorted([best, second, near, other], key=lambda r: r.key)
    assert rules.shortlist(everything, 1) == [other, best, near]
    assert rules.rings(rules.shortlist(everything, 1))[0].cities == ("xuzhou",)
    with pytest.raises(ValueError):
        rules.shortlist(everything, 0)


def test_every_entry_keeps_the_unit_vector_of_its_place(app: Flask, make_user: Callable[..., User]) -> None:
    xuzhou = Actor.for_user(make_user("u-xuzhou", "xuzhou"))
    _fill(random.Random(1), 20)  # a bulk INSERT, as the feed's first fill and the benchmark write
    moved = services.register_entry(db.session, xuzhou, entry(external_id="moving"))
    services.register_entry(
        db.session, xuzhou, entry(external_id="moving", location=GeoPoint(lat=33.9, lon=116.4))
    )
    db.session.expire_all()
    entries = list(db.session.scalars(sa.select(AidResource)))
    assert len(entries) == 21
    for e in entries:
        assert (e.ux, e.uy, e.uz) == rules.unit_vector(e.lat, e.lon)
    now_at = db.session.get(AidResource, moved.id)
    assert now_at is not None and (now_at.lat, now_at.lon) == (33.9, 116.4)


@pytest.mark.parametrize("seed", range(5))
def test_no_place_in_a_grid_cell_is_nearer_than_the_cells_bound(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        here = (rng.uniform(-89, 89), rng.uniform(-180, 180))
        scale = rng.choice((0.01, 0.3, 5.0, 90.0))
        lat = max(-90.0, min(90.0, here[0] + rng.gauss(0, scale)))
        lon = (here[1] + rng.gauss(0, scale) + 180) % 360 - 180
        box = rules.cell_box(rules.cell_of(lat, lon))
        south, north, west, east = box
        assert south <= lat <= north and west <= lon <= east
        bound = rules.km_to_box(*here, box)
        assert rules.km_to_cells(*here)(rules.cell_of(lat, lon)) == pytest.approx(bound, abs=1e-9)
        corners = [(a, b) for a in (south, north) for b in (west, east)]
        inside = [(rng.uniform(south, north), rng.uniform(west, east)) for _ in range(20)]
        assert all(bound <= rules.haversine_km(*here, a, b) for a, b in [(lat, lon), *corners, *inside])
    # The bound is tight: a place due north of a cell is as far as the cell's north edge.
    box = rules.cell_box(rules.cell_of(34.05, 117.05))
    assert rules.km_to_box(35.0, 117.05, box) == pytest.approx(
        rules.haversine_km(35.0, 117.05, box[1], 117.05)
    )
    assert rules.km_to_box(34.05, 117.05, box) == 0.0


def _cells() -> set[tuple[str, int, int, int]]:
    table = table_of(AidResourceCell)
    return {
        (row.type_code, row.owner_city_id, row.grade, row.cell)
        for row in db.session.execute(sa.select(table))
    }


def test_the_grid_holds_the_cell_of_every_entry_however_it_was_written(
    app: Flask, make_user: Callable[..., User]
) -> None:
    xuzhou = Actor.for_user(make_user("u-xuzhou", "xuzhou"))
    _fill(random.Random(2), 50)
    moved = services.register_entry(db.session, xuzhou, entry(external_id="moving"))
    services.register_entry(
        db.session, xuzhou, entry(external_id="moving", location=GeoPoint(lat=33.9, lon=116.4))
    )
    # A hand-written UPDATE of the grade, as an upkeep script might write it.
    entries = table_of(AidResource)
    db.session.execute(sa.update(entries).where(entries.c.id == moved.id).values(grade=1))
    db.session.expire_all()

    def noted(e: AidResource) -> tuple[str, int, int, int]:
        return (e.type_code, e.owner_city_id, e.grade or 0, e.cell)

    rows = list(db.session.scalars(sa.select(AidResource)))
    assert all(e.cell == rules.cell_of(e.lat, e.lon) for e in rows)
    assert {noted(e) for e in rows} <= _cells()
    # The cell the moved entry left stays noted: sourcing reads it and finds nothing there.
    assert (moved.type_code, moved.owner_city_id, 0, rules.cell_of(XUZHOU.lat, XUZHOU.lon)) in _cells()


def _cluster(rng: random.Random, size: int) -> None:
    """Write a registry like the benchmark's, a dense cloud around each city, with cities whose
    nearest cells hold nothing to give, and cities whose entries of the best fit are all stale."""
    now = utcnow()
    cities = list(db.session.scalars(sa.select(City)))
    empty_near = set(rng.sample([c.id for c in cities], 3))
    all_stale = set(rng.sample([c.id for c in cities], 3))
    rows = []
    for n in range(size):
        owner = rng.choice(cities)
        code, grades = rng.choice(TYPES)
        row = CATALOGUE[code]
        on_hand = Decimal(1) if row.bookable else Decimal(rng.randint(1, 20))
        lat = owner.latitude + rng.uniform(-0.3, 0.3)
        lon = owner.longitude + rng.uniform(-0.3, 0.3)
        # Nothing to give on the city's side towards Linyi (south-west of it, roughly).
        spent = owner.id in empty_near and lat - owner.latitude > -0.1 and rng.random() < 0.95
        days = rng.choice((1, 29, 31, 45))
        if owner.id in all_stale and code in ("equipment.pump.drainage", "team.usar"):
            days = 45
        rows.append(
            {
                "owner_city_id": owner.id,
                "external_id": f"c-{n}",
                "type_code": code,
                "kind": row.kind.value,
                "grade": rng.choice(grades),
                "bookable": row.bookable,
                "name": row.name_zh,
                "on_hand": on_hand,
                "reserved": on_hand if spent and rng.random() < 0.5 else Decimal(0),
                "deployed": Decimal(0),
                "unit": row.unit,
                "lat": lat,
                "lon": lon,
                "status": "out_of_service" if spent and rng.random() < 0.5 else "available",
                "contact_name": "值班室",
                "contact_phone": "0000000",
                "verified_at": now - timedelta(days=days),
                "verified_by": "test",
            }
        )
    db.session.execute(sa.insert(AidResource), rows)
    db.session.flush()


@pytest.mark.parametrize("seed", range(6))
def test_the_ranking_in_a_dense_registry_is_the_plain_rule(linyi: Actor, seed: int) -> None:
    rng = random.Random(100 + seed)
    _cluster(rng, 3_000)
    point = {"lat": rng.uniform(34.6, 35.4), "lon": rng.uniform(117.9, 118.8)}
    if seed % 3 == 2:
        # The place inside another city's cloud: its cells are at distance 0.
        xuzhou = db.session.scalars(sa.select(City).where(City.slug == "xuzhou")).one()
        point = {"lat": xuzhou.latitude + 0.05, "lon": xuzhou.longitude - 0.05}
    request = services.create_request(
        db.session,
        linyi,
        title="密集登记册",
        lines=[
            line(
                lid, type_code=code, quantity=3, min_grade=grade, report_to={"place": "现场", "point": point}
            )
            for lid, code, grade in LINES
        ],
        contact=CONTACT,
    )
    now = utcnow()
    fresh_for = timedelta(days=30)
    plain = _plain(request, fresh_for, now)
    for line_ in request.lines:
        cut = services.rank_candidates(db.session, line_.id, fresh_for=fresh_for, now=now)
        assert cut == rules.shortlist(plain[line_.id], 1)
    found = services.sourcing_rings(db.session, request, fresh_for=fresh_for, now=now)
    expected = rules.rings([r for ranked in plain.values() for r in ranked])
    assert found == rules.rings([r for ranked in plain.values() for r in rules.shortlist(ranked, 1)])
    assert [(r.index, r.cities) for r in found] == [(r.index, r.cities) for r in expected]


def test_a_city_whose_nearest_entry_is_taken_ranks_by_its_next(
    linyi: Actor, make_user: Callable[..., User]
) -> None:
    xuzhou = Actor.for_user(make_user("u-xuzhou", "xuzhou"))
    _cluster(random.Random(9), 1_500)
    request = services.create_request(db.session, linyi, title="被占用", lines=[line()], contact=CONTACT)
    line_id = request.lines[0].id
    now = utcnow()
    before = services.rank_candidates(db.session, line_id, fresh_for=timedelta(days=30), now=now)
    taken = next(r for r in before if r.candidate.owner_city == "xuzhou")
    offer = services.make_offer(
        db.session, xuzhou, line_id, int(taken.candidate.resource_id), taken.candidate.available
    )
    services.accept(db.session, linyi, offer.id)
    db.session.expire_all()
    after = services.rank_candidates(db.session, line_id, fresh_for=timedelta(days=30), now=now)
    assert taken.candidate.resource_id not in {r.candidate.resource_id for r in after}
    assert after == rules.shortlist(_plain(request, timedelta(days=30), now)[line_id], 1)
