"""Which member city a point lies in, from the boundaries the hub ships."""

from __future__ import annotations

import json
import math
import random
from importlib import resources

import pytest

from hub.kernel import geography


def _cities() -> list[dict[str, object]]:
    text = resources.files("hub.data").joinpath("huaihai_cities.json").read_text(encoding="utf-8")
    return json.loads(text)["cities"]


@pytest.mark.parametrize("city", _cities(), ids=lambda c: c["slug"])
def test_each_city_centre_lies_in_its_own_city(city: dict[str, object]) -> None:
    longitude, latitude = city["centre"]  # type: ignore[misc]
    assert geography.member_city_at(longitude, latitude) == city["slug"]


def test_the_file_holds_ten_members_and_fourteen_neighbours() -> None:
    areas = geography.areas()
    assert sorted(a.slug for a in areas if a.member) == sorted(c["slug"] for c in _cities())  # type: ignore[type-var]
    assert sum(1 for a in areas if not a.member) == 14


@pytest.mark.parametrize(
    ("longitude", "latitude"),
    [
        (116.7, 31.86),  # 合肥, south of the region
        (117.09, 36.2),  # 泰安, a neighbour shown for context
        (121.5, 31.2),  # 上海
        (0.0, 0.0),
    ],
)
def test_points_outside_the_member_cities_have_none(longitude: float, latitude: float) -> None:
    assert geography.member_city_at(longitude, latitude) is None


def test_a_point_in_a_neighbour_is_not_a_member() -> None:
    taian = next(a for a in geography.areas() if a.name_zh == "泰安市")
    assert taian.contains(117.09, 36.2)
    assert not taian.member


def _brute_clearance_m(longitude: float, latitude: float) -> float:
    """The distance to the nearest member edge, every edge looked at (what the index must agree with)."""
    kx = geography._M_PER_DEG_LON * math.cos(math.radians(latitude))
    ky = geography._M_PER_DEG_LAT
    best = math.inf
    for area in geography.areas():
        if not area.member:
            continue
        for polygon in area.polygons:
            for ring in polygon:
                for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
                    ax, ay, dx, dy = (
                        (x1 - longitude) * kx,
                        (y1 - latitude) * ky,
                        (x2 - x1) * kx,
                        (y2 - y1) * ky,
                    )
                    length = dx * dx + dy * dy
                    t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
                    best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return min(best, geography.CLEARANCE_CAP_M)


def test_place_agrees_with_every_edge_looked_at() -> None:
    rng = random.Random(20261130)
    points = [(rng.uniform(115.0, 120.0), rng.uniform(32.8, 36.3)) for _ in range(150)]
    # Points near borders, where it matters: along the road from Xuzhou to Suqian.
    points += [(117.185 + 1.09 * t / 60, 34.262 - 0.299 * t / 60) for t in range(60)]
    for longitude, latitude in points:
        placed = geography.place(longitude, latitude)
        assert placed.slug == geography.member_city_at(longitude, latitude), (longitude, latitude)
        assert placed.clearance_m == pytest.approx(_brute_clearance_m(longitude, latitude), abs=0.01)
