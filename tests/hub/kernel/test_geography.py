"""Which member city a point lies in, from the boundaries the hub ships."""

from __future__ import annotations

import json
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
