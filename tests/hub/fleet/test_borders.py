"""Border hand-off: a vehicle counts as in another city only once well inside it, and that city's
desk is told; a road along the border does not flap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from contracts.mqtt import Telemetry, decode_message, encode, telemetry_topic
from hub.config import Settings
from hub.extensions import db
from hub.fleet import borders, ingest
from hub.fleet import services as fleet
from hub.fleet.models import Vehicle, VehicleCrossing
from hub.kernel import desk, geography
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)
ROOT = "hh"
XUZHOU = (117.185, 34.262)
SUQIAN = (118.275, 33.963)


def _along(t: float) -> tuple[float, float]:
    """Return the point a fraction t of the way from Xuzhou's centre to Suqian's."""
    return (XUZHOU[0] + (SUQIAN[0] - XUZHOU[0]) * t, XUZHOU[1] + (SUQIAN[1] - XUZHOU[1]) * t)


def _border_t() -> float:
    """Return where the straight road from Xuzhou to Suqian crosses into Suqian (bisection)."""
    low, high = 0.0, 1.0
    assert geography.member_city_at(*_along(low)) == "xuzhou"
    assert geography.member_city_at(*_along(high)) == "suqian"
    for _ in range(40):
        middle = (low + high) / 2
        if geography.member_city_at(*_along(middle)) == "suqian":
            high = middle
        else:
            low = middle
    return high


@pytest.fixture(scope="module")
def road() -> dict[str, tuple[float, float]]:
    """Points on the road: deep in Xuzhou, 100 m either side of the border, 1 km into Suqian."""
    border = _border_t()
    metres = geography._M_PER_DEG_LAT * ((SUQIAN[0] - XUZHOU[0]) ** 2 + (SUQIAN[1] - XUZHOU[1]) ** 2) ** 0.5
    step = 1 / metres  # about one metre of road (the exact scale does not matter below)
    points = {
        "xuzhou": _along(border - 5_000 * step),
        "xuzhou_edge": _along(border - 100 * step),
        "suqian_edge": _along(border + 100 * step),
        "suqian": _along(border + 1_500 * step),
    }
    # What the points are, by the boundaries themselves: sides and distances to the border.
    found = {name: geography.place(*point) for name, point in points.items()}
    assert [found[n].slug for n in points] == ["xuzhou", "xuzhou", "suqian", "suqian"]
    assert found["xuzhou_edge"].clearance_m < borders.MARGIN_M
    assert found["suqian_edge"].clearance_m < borders.MARGIN_M
    assert found["suqian"].clearance_m > borders.MARGIN_M and found["xuzhou"].clearance_m > borders.MARGIN_M
    return points


@pytest.fixture
def vehicle(app, city) -> Vehicle:
    registered, _ = fleet.register_vehicle(db.session, ADMIN, city("xuzhou"), "xz-01", "徐州1号指挥车")
    db.session.commit()
    return registered


class Road:
    """Reports a vehicle's positions, one batch each, a second apart."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC) - timedelta(minutes=10)
        self.seq = 0

    def report(self, point: tuple[float, float], *, at: datetime | None = None) -> None:
        self.seq += 1
        self.at += timedelta(seconds=1)
        report = Telemetry(
            vehicle="xz-01",
            lon=point[0],
            lat=point[1],
            speed_kmh=60.0,
            heading=90.0,
            at=at or self.at,
            seq=self.seq,
        )
        topic = telemetry_topic(ROOT, "xuzhou", "xz-01")
        address, payload = decode_message(topic, encode(report))
        ingest.apply_batch(db.session, [ingest.Inbound(address, payload, encode(report))], root=ROOT)
        db.session.commit()


def _area(vehicle: Vehicle) -> str | None:
    db.session.expire_all()
    found = db.session.get(Vehicle, vehicle.id)
    assert found is not None
    return found.area_city.slug if found.area_city else None


def _crossings() -> list[tuple[str | None, str | None]]:
    slugs = dict(db.session.execute(select(City.id, City.slug)).tuples().all())
    rows = db.session.scalars(select(VehicleCrossing).order_by(VehicleCrossing.id))
    return [(slugs.get(r.from_city_id), slugs.get(r.to_city_id)) for r in rows]  # type: ignore[arg-type]


def _entered_items(city_slug: str, settings: Settings) -> list[str]:
    city_id = db.session.scalar(select(City.id).where(City.slug == city_slug))
    assert city_id is not None
    found = desk.for_city(db.session, city_id, settings)
    return [item.key or "" for item in found.urgent if (item.key or "").startswith("fleet:entered:")]


def test_a_vehicle_hands_over_only_once_well_inside_and_does_not_flap(
    vehicle: Vehicle, road: dict[str, tuple[float, float]], settings: Settings
) -> None:
    drive = Road()
    drive.report(road["xuzhou"])
    assert _area(vehicle) == "xuzhou"
    # Along the border, 100 m either side, back and forth: still in Xuzhou.
    for name in ("suqian_edge", "xuzhou_edge", "suqian_edge", "xuzhou_edge", "suqian_edge"):
        drive.report(road[name])
        assert _area(vehicle) == "xuzhou", name
    assert _entered_items("suqian", settings) == []

    drive.report(road["suqian"])
    assert _area(vehicle) == "suqian"
    (key,) = _entered_items("suqian", settings)
    suqian_desk = desk.for_city(db.session, vehicle.area_city_id or 0, settings)
    assert [item.key for item in suqian_desk.alerting] == [key]
    assert _entered_items("xuzhou", settings) == []  # its own city is not told

    # Back to the border, even 100 m into Xuzhou: still in Suqian.
    for name in ("suqian_edge", "xuzhou_edge"):
        drive.report(road[name])
        assert _area(vehicle) == "suqian", name
    drive.report(road["xuzhou"])
    assert _area(vehicle) == "xuzhou"
    assert _entered_items("suqian", settings) == []
    assert _crossings() == [(None, "xuzhou"), ("xuzhou", "suqian"), ("suqian", "xuzhou")]


def test_a_late_report_from_across_the_border_moves_nothing(
    vehicle: Vehicle, road: dict[str, tuple[float, float]]
) -> None:
    drive = Road()
    drive.report(road["xuzhou"])
    # Older than the stored position: neither the position nor the city moves.
    drive.report(road["suqian"], at=drive.at - timedelta(minutes=1))
    assert _area(vehicle) == "xuzhou"
    assert _crossings() == [(None, "xuzhou")]


def test_each_entry_is_a_new_desk_item(
    vehicle: Vehicle, road: dict[str, tuple[float, float]], settings: Settings
) -> None:
    drive = Road()
    drive.report(road["suqian"])
    (first,) = _entered_items("suqian", settings)
    drive.report(road["xuzhou"])
    drive.report(road["suqian"])
    (second,) = _entered_items("suqian", settings)
    assert first != second
