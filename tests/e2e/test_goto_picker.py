"""The "go to" command picks its place on the map, in a real browser, and sends those coordinates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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


def test_a_goto_destination_picked_on_the_map_is_what_the_vehicle_is_sent(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    watched: Watch,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    db.session.commit()
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    lat, lon = _point_in("linyi", city)
    page = watched.page
    login(page, "linyi-coord")
    page.goto(f"{live_hub}/vehicles/{vehicle.id}")
    picker = page.locator("#map-goto")
    expect(picker).to_have_attribute("data-drawn", "10")
    where = page.evaluate(
        "([lat, lon]) => window.hubMaps.goto.map.latLngToContainerPoint([lat, lon])", [lat, lon]
    )
    picker.click(position={"x": where["x"], "y": where["y"]})
    expect(picker).to_have_attribute("data-picked-city", "linyi")
    # No affected-cities box on this form: the line beside the map only says where the point is.
    expect(page.locator(".map-picked")).to_have_text("位于临沂市。")
    picked_lat = float(page.get_by_label("纬度").input_value())
    picked_lon = float(page.get_by_label("经度").input_value())
    assert abs(picked_lat - lat) < 0.02 and abs(picked_lon - lon) < 0.02
    assert geography.member_city_at(picked_lon, picked_lat) == "linyi"

    page.locator("select#kind").select_option(label="前往指定地点")
    page.get_by_label("说明").fill("前往兰山区集结")
    shoot(page, "goto-picker.png")
    page.get_by_role("button", name="下达").click()
    expect(page.get_by_role("alert")).to_contain_text("指令已下达")
    expect(page.locator("#commands")).to_contain_text("前往兰山区集结")

    db.session.expire_all()
    command = db.session.scalars(sa.select(VehicleCommand)).one()
    assert command.kind == "goto"
    assert (command.arguments["lat"], command.arguments["lon"]) == pytest.approx((picked_lat, picked_lon))
    watched.check()
