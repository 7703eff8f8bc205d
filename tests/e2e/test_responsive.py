"""Phone and tablet: at 390×844 and 1024×768 no page of the menu scrolls sideways, the header stays
small and lists turn into cards; the menu holds one line in English at 1280 px and in Chinese at
1366 px. Screenshots of each page and size go to test-artifacts/responsive/ for a person to look at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.bulletins import BulletinCreate
from hub.bulletins import services as bulletins
from hub.extensions import db
from hub.fleet import services as fleet
from hub.kernel.actors import Actor
from hub.kernel.models import Role

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "responsive"
SIZES = {"phone": (390, 844), "tablet": (1024, 768)}
# The longest names the lists hold, so that a card or a cell has to wrap them.
LONG_TITLE = "沂河临沂段兰山区柳青街道至河东区汤河镇堤防出现多处渗水管涌险情需紧急加固"


@pytest.fixture
def busy_hub(live_hub: str, make_user: Callable[..., Any], make_incident: Callable[..., Any], city) -> str:
    """The hub with something in every list: incidents, a bulletin each way, a vehicle."""
    linyi = make_user("ly", "linyi")
    xuzhou = make_user("xz", "xuzhou")
    make_incident("linyi", "II", title=LONG_TITLE, affected_cities=["linyi", "xuzhou", "suqian", "heze"])
    make_incident("xuzhou", "IV", title="徐州铜山区道路塌陷")
    for author, to in ((linyi, "xuzhou"), (xuzhou, "linyi")):
        data = BulletinCreate.model_validate(
            {
                "kind": "bulletin",
                "category": "natural_disaster",
                "area": "沂河流域",
                "title": LONG_TITLE,
                "text": "沂河临沂段水位上涨。",
                "addressed_cities": [to, "suqian", "heze", "zaozhuang"],
                "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
            }
        )
        bulletins.issue(db.session, Actor.for_user(author), data)
    admin = Actor("system", "tests", None, Role.ADMIN)
    vehicle, _ = fleet.register_vehicle(
        db.session, admin, city("linyi"), "cmd-linyi-01", "临沂市应急管理局1号移动指挥车"
    )
    vehicle.latitude, vehicle.longitude, vehicle.online = 35.06, 118.33, True
    db.session.commit()
    return live_hub


def _menu(page: Any) -> list[str]:
    return page.eval_on_selector_all(".topbar nav a", "links => links.map(a => a.getAttribute('href'))")


def _bar_links(page: Any) -> str:
    return ".topbar nav > a, .topbar .nav-more-button"


def _overflow(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
          const width = document.documentElement.scrollWidth, inner = window.innerWidth;
          const wide = [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > inner + 1 && e.offsetParent !== null)
            .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 30));
          const header = document.querySelector('.topbar').getBoundingClientRect().height;
          return {width, inner, wide, header};
        }"""
    )


def test_no_page_scrolls_sideways_on_a_phone_or_a_tablet(
    busy_hub: str, new_page: Callable[..., Any], login: Callable[..., None]
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page()
    login(page, "ly")
    paths = ["/", *(p for p in _menu(page) if p != "/"), "/bulletins/new", "/incidents/new"]
    assert len(paths) >= 8, paths
    problems = []
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        for path in paths:
            page.goto(f"{busy_hub}{path}", wait_until="load")
            found = _overflow(page)
            name = path.strip("/").replace("/", "-") or "desk"
            page.screenshot(path=str(ARTIFACTS / f"{size}-{name}.png"), full_page=True)
            if found["width"] > found["inner"]:
                problems.append((size, path, found))
            # One short bar: the brand, the city, the menu button (phone) or the menu (tablet).
            if found["header"] > (60 if size == "phone" else 110):
                problems.append((size, path, f"header {found['header']} px"))
    assert problems == [], "\n".join(map(str, problems))


def test_lists_become_cards_and_the_menu_folds_on_a_phone(
    busy_hub: str, new_page: Callable[..., Any], login: Callable[..., None]
) -> None:
    page = new_page()
    login(page, "ly")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{busy_hub}/incidents/")
    assert not page.locator(".topbar nav").is_visible()
    page.locator(".nav-toggle-label").click()
    assert page.locator(".topbar nav").is_visible()
    page.screenshot(path=str(ARTIFACTS / "phone-menu-open.png"), full_page=False)
    assert not page.locator("table.list thead").is_visible()
    cell = page.locator("table.list tbody tr").first.locator("td[data-label]").nth(1)
    label = cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"事件"'
    # Lists whose template names no cells are named from their headings (the vehicles page).
    page.goto(f"{busy_hub}/vehicles", wait_until="load")
    assert not page.locator("#vehicles thead").is_visible()
    first = page.locator("#vehicles tbody tr").first.locator("td").first
    assert first.get_attribute("data-label") == "车辆"


@pytest.mark.parametrize(("locale", "width"), [("en", 1280), ("zh_CN", 1366)])
def test_the_menu_holds_one_line(
    busy_hub: str, new_page: Callable[..., Any], login: Callable[..., None], locale: str, width: int
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page(width)
    login(page, "ly")
    if locale == "en":
        page.get_by_role("button", name="English").click()
        page.wait_for_load_state("domcontentloaded")
    tops = page.eval_on_selector_all(
        _bar_links(page), "links => links.map(a => Math.round(a.getBoundingClientRect().top))"
    )
    page.screenshot(path=str(ARTIFACTS / f"menu-{locale}-{width}.png"), full_page=False)
    assert max(tops) - min(tops) < 10, tops  # one line (a badge may shift a baseline by a pixel or two)
    # The folded entries open under "more" on hover, on the page.
    page.locator(".nav-more-button").hover()
    audit_log = page.locator('.nav-more-items a[data-endpoint="admin.audit"]')
    assert audit_log.is_visible()
    audit_log.click()
    page.wait_for_url(f"{busy_hub}/audit")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
