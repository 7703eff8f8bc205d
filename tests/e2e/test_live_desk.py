"""Acceptance, in a real browser: an open desk is live and loud.

Xuzhou's desk is open; Linyi records a level I incident in another browser context; the desk
shows it without a reload (pushed over Server-Sent Events), flashes a badge in the title and on
the 值班台 menu entry, tries its tone, and keeps doing so until the notice is acknowledged. When the
session ends elsewhere, the desk sends the person to log in again and back to the desk.
"""

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
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

TITLE = "沂沭河特大洪水：临沂城区段漫堤"
APPEAR_TIMEOUT_MS = 20_000


def _record_level_one(page: Any) -> None:
    occurred = datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(minutes=15)
    page.get_by_label("事件标题").fill(TITLE)
    page.get_by_label("事件类别").select_option(label="自然灾害")
    page.get_by_label("事件级别").select_option(label="I 级 特别重大")
    page.get_by_label("发生时间").fill(occurred.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("地址").fill("临沂市兰山区沂河右岸")
    page.get_by_label("事件概况").fill("沂河、沭河同时超保证水位，城区段漫堤，已转移群众约 1.2 万人。")


def test_a_level_one_incident_in_linyi_reaches_the_open_xuzhou_desk_loudly(
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)

    xuzhou = new_page()
    xuzhou.context.grant_permissions(["notifications"], origin=live_hub)
    login(xuzhou, "xuzhou-coord")
    state = xuzhou.locator("#live-state")
    expect(state).to_have_attribute("data-state", "live")
    expect(state).to_contain_text("实时")
    expect(xuzhou.locator("#live-clock")).to_have_text(re.compile(r"\d{2}:\d{2}:\d{2}"))
    expect(xuzhou.locator("#live-updated")).to_have_text(re.compile(r"\d{2}:\d{2}:\d{2}"))
    xuzhou.locator("h1").click()  # the first interaction: the tone may play from now on
    title_before = xuzhou.title()
    loads: list[str] = []
    xuzhou.on("load", lambda p: loads.append(p.url))
    shoot(xuzhou, "desk-live-quiet.png")

    linyi = new_page()
    login(linyi, "linyi-coord")
    linyi.get_by_role("link", name="接报新事件").click()
    _record_level_one(linyi)
    submitted = time.monotonic()
    linyi.get_by_role("button", name="提交接报").click()
    linyi.wait_for_url(re.compile(rf"{re.escape(live_hub)}/incidents/\d+$"))

    urgent = xuzhou.locator("section.urgent-card")
    expect(urgent.get_by_role("link", name=TITLE)).to_be_visible(timeout=APPEAR_TIMEOUT_MS)
    print(f"\nsubmit → Xuzhou desk shows the level I notice: {time.monotonic() - submitted:.2f} s")
    assert loads == [], "the desk was reloaded instead of updating in place"
    expect(urgent.locator("li[data-alert]", has_text=TITLE)).to_be_visible()
    # The badge flashes: the title alternates between two badges, and the menu entry shows one.
    expect(xuzhou).to_have_title(re.compile(r"^【1 待确认】"), timeout=3_000)
    expect(xuzhou).to_have_title(re.compile(r"^【1】"), timeout=3_000)
    menu = xuzhou.locator('.topbar nav a[data-endpoint="dashboard.index"]')
    expect(menu).to_have_class(re.compile(r"\balerting\b"))
    expect(menu.locator(".nav-badge")).to_have_text("1")
    assert int(xuzhou.evaluate("document.getElementById('live').dataset.beeps || '0'")) >= 1
    shoot(xuzhou, "desk-live-alert.png")

    # A person acknowledges it (确认已阅): the alert stops; the inbox says who read it and when.
    urgent.locator("li", has_text=TITLE).get_by_role("button", name="确认已阅").click()
    expect(urgent.get_by_role("link", name=TITLE)).to_have_count(0)
    expect(xuzhou).to_have_title(title_before, timeout=5_000)
    expect(menu.locator(".nav-badge")).to_have_count(0)
    row = xuzhou.locator("#notifications tbody tr", has_text=TITLE)
    expect(row).to_contain_text(re.compile(r"xuzhou-coord 于 .*确认"))
    shoot(xuzhou, "desk-live-acknowledged.png")

    # The session ends in another tab: the desk sends the person to log in, then back.
    other = xuzhou.context.new_page()
    other.goto(f"{live_hub}/")
    other.get_by_role("button", name="退出").click()
    other.wait_for_url(re.compile(r"/login"))
    xuzhou.wait_for_url(re.compile(r"/login\?next=%2F$"), timeout=APPEAR_TIMEOUT_MS)
    xuzhou.get_by_label("用户名").fill("xuzhou-coord")
    xuzhou.get_by_label("密码").fill(PASSWORD)
    xuzhou.get_by_role("button", name="登录").click()
    xuzhou.wait_for_url(f"{live_hub}/")
    expect(xuzhou.locator("#live-state")).to_have_attribute("data-state", "live")


def test_without_event_source_the_desk_polls_and_says_it_is_not_live(
    live_hub: str,
    make_user: Callable[..., Any],
    make_incident: Callable[..., Any],
    page: Any,
    login: Callable[..., None],
) -> None:
    from hub.extensions import db
    from hub.incidents import notifications

    make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    page.add_init_script("delete window.EventSource;")
    login(page, "xuzhou-coord")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#live-state")).to_contain_text("重连中")
    incident = make_incident("linyi", "II", title="邳州段堤防管涌")
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    expect(page.locator("section.urgent-card").get_by_role("link", name="邳州段堤防管涌")).to_be_visible(
        timeout=APPEAR_TIMEOUT_MS
    )
