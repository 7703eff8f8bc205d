"""Acceptance, in a real browser: Linyi records a major flood and Xuzhou's open dashboard shows it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from hub.kernel.models import Role

pytestmark = pytest.mark.e2e

TITLE = "沂河临沂段洪水漫堤"
APPEAR_TIMEOUT_MS = 20_000


def _record_flood(page: Any, base: str) -> None:
    """Fill the new-incident form as a Linyi coordinator would, in Chinese."""
    occurred = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=40)
    page.get_by_label("事件标题").fill(TITLE)
    page.get_by_label("事件类别").select_option(label="自然灾害")
    page.get_by_label("事件级别").select_option(label="II 级 重大")
    page.get_by_label("发生时间").fill(occurred.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("地址").fill("临沂市兰山区沂河左岸柳杭段")
    linyi = page.get_by_role("checkbox", name="临沂市")
    expect(linyi).to_be_checked()
    page.get_by_label("事件概况").fill(
        "受强降雨影响，沂河临沂段水位超警戒 1.2 米，柳杭段出现漫堤，"
        "已转移群众约 3000 人，下游郯城、邳州方向需提前防范。"
    )


def test_linyi_flood_appears_on_xuzhou_dashboard_without_reload(
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)

    # Xuzhou's duty desk is open and left alone: it must update itself.
    xuzhou = new_page()
    login(xuzhou, "xuzhou-coord")
    expect(xuzhou.get_by_role("heading", name="需立即处理")).to_be_visible()
    urgent = xuzhou.locator("section.urgent-card")
    inbox = xuzhou.locator("section[aria-labelledby='inbox-title']")
    expect(urgent).not_to_contain_text(TITLE)
    xuzhou_loads: list[str] = []
    xuzhou.on("load", lambda p: xuzhou_loads.append(p.url))

    linyi = new_page()
    linyi.goto(f"{live_hub}/login")
    expect(linyi.get_by_role("button", name="登录")).to_be_visible()
    shoot(linyi, "login.png")
    login(linyi, "linyi-coord")
    linyi.get_by_role("link", name="接报新事件").click()
    expect(linyi.get_by_role("heading", name="接报新事件")).to_be_visible()
    _record_flood(linyi, live_hub)
    shoot(linyi, "incident-new.png")

    submitted = time.monotonic()
    linyi.get_by_role("button", name="提交接报").click()
    linyi.wait_for_url(re.compile(rf"{re.escape(live_hub)}/incidents/\d+$"))
    expect(linyi.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(linyi.get_by_role("alert")).to_contain_text("事件已接报")
    facts = linyi.locator("dl.facts")
    expect(facts).to_contain_text("自然灾害")
    expect(facts).to_contain_text("临沂市")
    expect(facts).to_contain_text("兰山区沂河左岸柳杭段")

    expect(urgent.get_by_role("link", name=TITLE)).to_be_visible(timeout=APPEAR_TIMEOUT_MS)
    appeared = time.monotonic() - submitted
    row = inbox.locator("#notifications tbody tr", has_text=TITLE)
    expect(row).to_be_visible(timeout=APPEAR_TIMEOUT_MS)
    expect(row).to_contain_text("临沂市")
    expect(row).to_contain_text("相邻城市")
    print(f"\nsubmit → Xuzhou dashboard shows the incident: {appeared:.2f} s")
    assert xuzhou_loads == [], "the Xuzhou dashboard was reloaded instead of updating in place"
    assert xuzhou.evaluate("document.getElementById('live').dataset.refreshError") is None

    # The detail page, once the flow has notified the neighbours too.
    linyi.reload()
    expect(linyi.locator("section", has_text="已通报城市")).to_contain_text("徐州市")
    shoot(linyi, "incident-detail.png")
    shoot(xuzhou, "dashboard-xuzhou.png")
    # Xuzhou's desk map marks the incident with its level in Linyi (no place picked: its centre).
    incident_id = linyi.url.rsplit("/", 1)[-1]
    marker = xuzhou.locator(f"#map-desk path.incident[data-incident='{incident_id}']")
    expect(marker).to_have_class(re.compile(r"\blevel-2\b"), timeout=APPEAR_TIMEOUT_MS)
    marker.hover()
    expect(xuzhou.locator(".leaflet-tooltip", has_text=TITLE)).to_contain_text("临沂市")


def test_observer_cannot_record_an_incident(
    live_hub: str,
    make_user: Callable[..., Any],
    page: Any,
    login: Callable[..., None],
) -> None:
    make_user("linyi-observer", "linyi", Role.OBSERVER)
    login(page, "linyi-observer")
    expect(page.get_by_role("link", name="值班台")).to_be_visible()
    expect(page.get_by_role("link", name="接报新事件")).to_have_count(0)

    # Typing the address is refused before any typing is wasted, and so is a forged submission.
    response = page.goto(f"{live_hub}/incidents/new")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="无权操作")).to_be_visible()
    expect(page.get_by_text("观察员只能查看")).to_be_visible()
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    posted = page.request.post(
        f"{live_hub}/incidents/new",
        form={
            "csrf_token": token or "",
            "title": TITLE,
            "category": "natural_disaster",
            "level": "II",
            "occurred_at": "2026-11-29T08:00",
            "affected_cities": "linyi",
        },
    )
    assert posted.status == 403
    page.goto(f"{live_hub}/incidents/")
    expect(page.get_by_text(TITLE)).to_have_count(0)


def test_language_switch_turns_labels_to_english(
    live_hub: str,
    make_user: Callable[..., Any],
    page: Any,
    login: Callable[..., None],
) -> None:
    make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    login(page, "xuzhou-coord")
    expect(page.get_by_role("heading", name="需立即处理")).to_be_visible()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Action required now")).to_be_visible()
    expect(page.get_by_role("link", name="Report new incident")).to_be_visible()
    expect(page.get_by_role("button", name="中文")).to_be_visible()
    expect(page.locator(".city-badge")).to_have_text("Xuzhou")
    # The choice sticks across pages and live refreshes.
    page.get_by_role("link", name="Report new incident").click()
    expect(page.get_by_label("Username")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_have_text("Report new incident")
