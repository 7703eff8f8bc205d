"""The map's layers in a real browser: mutual-aid resources and requests, and a thousand vehicles
drawn on one canvas, with no request leaving the hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from hub.extensions import db
from hub.fleet.models import Vehicle
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.kernel.types import utcnow
from hub.mutual_aid import services as aid
from tests.e2e.test_region_map import Watch, watched  # noqa: F401  (the fixture)
from tests.hub.mutual_aid.factories import CONTACT, entry, line

pytestmark = pytest.mark.e2e


def test_a_thousand_vehicles_go_on_the_canvas_and_aid_layers_are_drawn(
    live_hub: str,
    make_user: Callable[..., Any],
    watched: Watch,  # noqa: F811
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    xuzhou = make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    linyi = make_user("linyi-coord", "linyi", Role.COORDINATOR)
    aid.register_entry(db.session, Actor.for_user(xuzhou), entry())
    aid.create_request(
        db.session, Actor.for_user(linyi), title="沂河洪水排涝", lines=[line()], contact=CONTACT
    )
    city = cities.by_slug(db.session, "xuzhou")
    now = utcnow()
    db.session.add_all(
        Vehicle(
            city_id=city.id,
            code=f"x{n:04d}",
            name=f"徐州{n}号",
            mqtt_username=f"hh-xuzhou-x{n:04d}",
            mqtt_password_hash="-",
            latitude=34.0 + (n % 40) * 0.02,
            longitude=116.8 + (n // 40) * 0.03,
            heading=float(n % 360),
            speed_kmh=30.0,
            position_at=now,
            online=True,
        )
        for n in range(1_000)
    )
    db.session.commit()

    page = watched.page
    login(page, "xuzhou-coord")
    desk_map = page.locator("#map-desk")
    expect(desk_map).to_have_attribute("data-vehicles-drawn-as", "canvas", timeout=15_000)
    expect(desk_map).to_have_attribute("data-layer-counts", "1000,1,1,0")
    assert desk_map.locator("canvas").count() >= 1
    assert desk_map.locator(".vehicle-marker").count() == 0  # no element per vehicle
    # The layer switch names the new layers; the resources come on when asked for.
    desk_map.locator(".leaflet-control-layers").hover()
    switch = desk_map.locator(".leaflet-control-layers-overlays")
    expect(switch).to_contain_text("支援资源")
    expect(switch).to_contain_text("支援请求（征集中）")
    expect(switch).to_contain_text("演练注入")
    switch.get_by_text("支援资源").click()
    expect(desk_map.locator(".map-legend")).to_contain_text("支援资源")
    desk_map.scroll_into_view_if_needed()
    page.mouse.move(0, 0)  # close the layer switch
    # Let Leaflet finish any zoom or pan animation, so the screenshot shows the map at rest.
    page.wait_for_function("() => !document.querySelector('#map-desk .leaflet-zoom-anim')")
    shoot(page, "map-layers-canvas.png")
    watched.check()
