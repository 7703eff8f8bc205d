"""The vehicles page and the bulletin pages in a real browser, with a refresh that needs no reload."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from contracts.bulletins import BulletinCreate
from hub.bulletins import services as bulletins
from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel.actors import Actor
from hub.kernel.models import Role

pytestmark = pytest.mark.e2e
ADMIN = Actor("system", "tests", None, Role.ADMIN)


def test_vehicle_positions_move_without_a_reload(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    page: Any,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Any],
) -> None:
    vehicles = []
    for slug, code, (lon, lat) in (
        ("linyi", "v01", (118.33, 35.06)),
        ("xuzhou", "v01", (117.19, 34.26)),
        ("heze", "v02", (115.47, 35.25)),
    ):
        vehicle, _ = fleet.register_vehicle(
            db.session, ADMIN, city(slug), code, f"{city(slug).name_zh[:-1]}1号指挥车"
        )
        vehicle.longitude, vehicle.latitude, vehicle.online = lon, lat, True
        vehicle.status, vehicle.speed_kmh, vehicle.position_at = "en_route", 62.0, datetime.now(UTC)
        vehicles.append(vehicle)
    vehicles[2].online = False
    db.session.commit()
    make_user("xuzhou-coord", "xuzhou")
    login(page, "xuzhou-coord")
    page.locator(".nav-more-button").hover()  # the vehicles page is under "more" in the menu
    page.get_by_role("link", name="指挥车").first.click()
    expect(page.locator('#vehicles tr[data-vehicle="linyi/v01"]')).to_contain_text("在线")
    marker = page.locator('#map-vehicles .vehicle-marker.online[data-vehicle="linyi/v01"]')
    expect(marker).to_have_count(1)
    before = marker.get_attribute("style")
    vehicles[0].longitude += 0.3
    db.session.commit()
    # Leaflet places a marker with a CSS transform: a new position is a new transform.
    expect(marker).not_to_have_attribute("style", before or "", timeout=10_000)
    expect(page.locator('#map-vehicles .vehicle-marker.offline[data-vehicle="heze/v02"]')).to_have_count(1)
    shoot(page, "vehicles.png")


def test_bulletin_receipt_matrix_and_acknowledging(
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Any],
) -> None:
    linyi = make_user("linyi-coord", "linyi")
    make_user("xuzhou-coord", "xuzhou")
    data = BulletinCreate.model_validate(
        {
            "kind": "warning",
            "colour": "orange",
            "category": "natural_disaster",
            "area": "沂河流域临沂段",
            "title": "沂河洪水橙色预警",
            "text": "预计未来12小时沂河临沂段出现超警戒水位。",
            "all_neighbours": True,
            "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=25)).isoformat(),
        }
    )
    bulletin = bulletins.issue(db.session, Actor.for_user(linyi), data)
    db.session.commit()
    xuzhou_page = new_page()
    login(xuzhou_page, "xuzhou-coord")
    # Xuzhou's platform took it (平台已接收); the warning stays on Xuzhou's desk until a person signs.
    xuzhou_row = next(r for r in bulletin.recipients if r.city.slug == "xuzhou")
    bulletins.record_delivery(db.session, xuzhou_row.id, platform_ref="XZ-1")
    db.session.commit()
    urgent = xuzhou_page.locator("#urgent-title + ul")
    expect(urgent).to_contain_text("待签收：沂河洪水橙色预警")
    expect(urgent).to_contain_text("平台已接收")
    shoot(xuzhou_page, "dashboard-receipt-owed.png")
    urgent.get_by_role("button", name="签收").click()
    expect(xuzhou_page.locator("#urgent-title + ul")).not_to_contain_text("沂河洪水橙色预警")
    xuzhou_page.goto(f"{live_hub}/bulletins/{bulletin.public_id}")
    signed = xuzhou_page.locator('#receipts tr[data-city="xuzhou"]')
    expect(signed.locator(".signature")).to_contain_text("xuzhou-coord")
    expect(signed.locator(".delivery")).not_to_contain_text("待送达")
    linyi_page = new_page()
    login(linyi_page, "linyi-coord")
    linyi_page.goto(f"{live_hub}/bulletins")
    matrix = linyi_page.locator("#outbox .matrix").first
    expect(matrix.locator(".cell.ok")).to_have_count(1)
    expect(matrix.locator(".cell")).to_have_count(4)
    shoot(linyi_page, "bulletins-outbox.png")
    assert bulletin.public_id
