"""Places picked on the map, in a real browser: the "go to" command's destination and an aid
request's report-to place; the line beside the map says which city the point lies in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import VehicleCommand
from hub.kernel import geography
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from tests.e2e.test_region_map import Watch, _point_in, watched

__all__ = ["watched"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def _pick(
    page: Any, name: str, slug: str, point: tuple[float, float], fields: tuple[str, str]
) -> tuple[float, float]:
    """Click the point on map `name`; check the city proposed and return the coordinates filled in."""
    picker = page.locator(f"#map-{name}")
    expect(picker).to_have_attribute("data-drawn", "10")
    where = page.evaluate(
        "([name, lat, lon]) => window.hubMaps[name].map.latLngToContainerPoint([lat, lon])", [name, *point]
    )
    picker.click(position={"x": where["x"], "y": where["y"]})
    expect(picker).to_have_attribute("data-picked-city", slug)
    picked = (float(page.locator(fields[0]).input_value()), float(page.locator(fields[1]).input_value()))
    # A click lands on a pixel: within a few hundred metres of the point aimed at.
    assert abs(picked[0] - point[0]) < 0.02 and abs(picked[1] - point[1]) < 0.02
    assert geography.member_city_at(picked[1], picked[0]) == slug
    return picked


def test_a_goto_destination_picked_on_the_map_is_what_the_vehicle_is_sent(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    watched: Watch,
    login: Any,
    shoot: Any,
) -> None:
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    db.session.commit()
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    page = watched.page
    login(page, "linyi-coord")
    page.goto(f"{live_hub}/vehicles/{vehicle.id}")
    picked = _pick(page, "goto", "linyi", _point_in("linyi", city), ("#latitude", "#longitude"))
    # No affected-cities box on this form: the line beside the map only says where the point is.
    expect(page.locator(".map-picked")).to_have_text("位于临沂市。")

    page.locator("select#kind").select_option(label="前往指定地点")
    page.get_by_label("说明").fill("前往兰山区集结")
    shoot(page, "goto-picker.png")
    page.get_by_role("button", name="下达").click()
    expect(page.get_by_role("alert")).to_contain_text("指令已下达")
    expect(page.locator("#commands")).to_contain_text("前往兰山区集结")

    db.session.expire_all()
    command = db.session.scalars(sa.select(VehicleCommand)).one()
    assert command.kind == "goto"
    assert (command.arguments["lat"], command.arguments["lon"]) == pytest.approx(picked)
    watched.check()


def test_an_aid_request_picks_its_report_to_place_on_the_map(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    watched: Watch,
    login: Any,
    shoot: Any,
) -> None:
    make_user("suqian-coord", "suqian", Role.COORDINATOR)
    page = watched.page
    login(page, "suqian-coord")
    page.goto(f"{live_hub}/aid/requests/new")
    _pick(page, "report-to", "suqian", _point_in("suqian", city), ("#report_to_lat", "#report_to_lon"))
    expect(page.locator(".map-picked")).to_have_text("位于宿迁市。")
    page.locator("#map-report-to").scroll_into_view_if_needed()
    shoot(page, "aid-request-picker.png")
    watched.check()
