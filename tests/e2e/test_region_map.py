"""The region map in a real browser: drawn from the hub alone, and a place picked on it is recorded."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hub.extensions import db
from hub.incidents.models import Incident
from hub.kernel import geography
from hub.kernel.models import Role

pytestmark = pytest.mark.e2e

MEMBER_SLUGS = sorted(area.slug for area in geography.areas() if area.member and area.slug)
# Records every CSP violation the page sees (Playwright's init scripts are not subject to the CSP).
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", function (event) {
  (window.__cspViolations = window.__cspViolations || []).push(
    event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@dataclass
class Watch:
    """What a page asked for and complained about while a test drove it."""

    page: Any
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def check(self) -> None:
        violations = self.page.evaluate("window.__cspViolations || []")
        assert self.foreign == [], f"requests left the hub: {self.foreign}"
        assert self.errors == [], f"the browser reported errors: {self.errors}"
        assert violations == [], f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def watched(page: Any) -> Iterator[Watch]:
    """The page, with every request off 127.0.0.1, console error and CSP violation recorded."""
    watch = Watch(page)

    def on_request(request: Any) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("data", "blob"):
            return
        if url.hostname != "127.0.0.1":
            watch.foreign.append(request.url)

    page.on("request", on_request)
    page.on(
        "console",
        lambda m: watch.errors.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None,
    )
    page.on(
        "response",
        lambda r: watch.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.add_init_script(CSP_WATCH)
    yield watch


def _point_in(slug: str, city: Callable[[str], Any]) -> tuple[float, float]:
    """A point a little off the city's centre that the boundaries place inside the city."""
    centre = city(slug)
    for dlat, dlon in ((0.06, 0.08), (-0.06, 0.08), (0.06, -0.08), (-0.06, -0.08), (0.0, 0.0)):
        lat, lon = round(centre.latitude + dlat, 3), round(centre.longitude + dlon, 3)
        if geography.member_city_at(lon, lat) == slug:
            return lat, lon
    raise AssertionError(f"no point found inside {slug}")


def test_desk_map_draws_the_ten_cities_from_the_hub_alone(
    live_hub: str,
    make_user: Callable[..., Any],
    watched: Watch,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    assert len(MEMBER_SLUGS) == 10
    make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    page = watched.page
    login(page, "xuzhou-coord")
    desk_map = page.locator("#map-desk")
    expect(desk_map).to_have_attribute("data-drawn", "10")
    cities = desk_map.locator("path.city-area.member[data-city]")
    expect(cities).to_have_count(10)
    assert sorted(cities.evaluate_all("els => els.map(e => e.dataset.city)")) == MEMBER_SLUGS
    expect(desk_map.locator("path.city-area.member.own")).to_have_attribute("data-city", "xuzhou")
    labels = desk_map.locator(".leaflet-tooltip.city-label:not(.neighbour)")
    expect(labels).to_have_count(10)
    expect(labels.filter(has_text="徐州市")).to_have_count(1)
    expect(desk_map.locator(".map-legend")).to_contain_text("图例")
    expect(desk_map.locator(".map-legend")).to_contain_text("成员城市")
    expect(desk_map).to_have_attribute("data-refreshed-at", re.compile(r"\d"))

    # The live desk swaps its fragment in: the map that was drawn is kept, not drawn again.
    expect(page.locator("#live")).to_have_attribute("data-refreshed-at", re.compile(r"\d"))
    expect(page.locator("#map-desk")).to_have_count(1)
    expect(page.locator("#map-desk path.city-area.member")).to_have_count(10)

    # The urgent items come first; the map sits below them.
    urgent = page.locator("section.urgent-card").bounding_box()
    drawn = page.locator("#map-desk").bounding_box()
    assert urgent is not None and drawn is not None
    assert urgent["y"] + urgent["height"] < 900, "the urgent items are not on the first screen"
    assert drawn["y"] > urgent["y"] + urgent["height"]
    page.locator("#map-desk").scroll_into_view_if_needed()
    shoot(page, "desk-map.png")
    watched.check()
    assert page.evaluate("document.getElementById('map-desk').dataset.refreshError") is None


def test_a_place_picked_on_the_map_proposes_its_city_and_is_recorded(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    watched: Watch,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    lat, lon = _point_in("linyi", city)
    page = watched.page
    login(page, "xuzhou-coord")
    page.get_by_role("link", name="接报新事件").click()
    picker = page.locator("#map-picker")
    expect(picker).to_have_attribute("data-drawn", "10")
    linyi = page.get_by_role("checkbox", name="临沂市")
    expect(linyi).not_to_be_checked()

    where = page.evaluate(
        "([lat, lon]) => window.hubMaps.picker.map.latLngToContainerPoint([lat, lon])", [lat, lon]
    )
    picker.click(position={"x": where["x"], "y": where["y"]})
    expect(picker).to_have_attribute("data-picked-city", "linyi")
    expect(linyi).to_be_checked()
    expect(page.locator(".map-picked")).to_contain_text("临沂市")
    picked_lat = float(page.get_by_label("纬度").input_value())
    picked_lon = float(page.get_by_label("经度").input_value())
    # A click lands on a pixel: within a few hundred metres of the point aimed at.
    assert abs(picked_lat - lat) < 0.02 and abs(picked_lon - lon) < 0.02
    assert geography.member_city_at(picked_lon, picked_lat) == "linyi"
    expect(picker.locator("path.picked")).to_have_count(1)

    occurred = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=20)
    page.get_by_label("事件标题").fill("兰山区化工厂泄漏")
    page.get_by_label("事件类别").select_option(label="事故灾难")
    page.get_by_label("事件级别").select_option(label="III 级 较大")
    page.get_by_label("发生时间").fill(occurred.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("地址").fill("临沂市兰山区")
    page.locator("#map-picker").scroll_into_view_if_needed()
    shoot(page, "incident-picker.png")
    page.get_by_role("button", name="提交接报").click()
    page.wait_for_url(re.compile(rf"{re.escape(live_hub)}/incidents/\d+$"))
    expect(page.get_by_role("alert")).to_contain_text("事件已接报")
    expect(page.locator("#incident-coords")).to_have_text(f"{picked_lat:.5f}, {picked_lon:.5f}")
    expect(page.locator("dl.facts")).to_contain_text("临沂市")
    expect(page.locator("#map-incident path.picked")).to_have_count(1)

    incident_id = int(page.url.rsplit("/", 1)[-1])
    db.session.expire_all()
    incident = db.session.scalars(sa.select(Incident).where(Incident.id == incident_id)).one()
    assert (incident.latitude, incident.longitude) == pytest.approx((picked_lat, picked_lon))
    assert "linyi" in {c.slug for c in incident.affected_cities}
    watched.check()
