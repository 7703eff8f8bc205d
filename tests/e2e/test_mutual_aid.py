"""Acceptance, in a real browser: a mutual-aid request walked from the ask to the return as two cities.

Linyi asks for drainage pumps on the request form; the first ring asks Xuzhou, whose desk lists
the answer it owes; Xuzhou offers its stored package in one click; Linyi's open request page shows
the offer without a reload (pushed by the desk's change detector), accepts it; Xuzhou authorises
with an order number and dispatches; Linyi confirms the arrival and asks to keep the pumps a day
longer; Xuzhou grants it; Linyi releases; Xuzhou's first count of the return does not add up and
is refused in Chinese, the second does, and the pumps are available again. Screenshots at 1280 px.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.mutual_aid import services
from hub.mutual_aid.models import AidResource
from tests.hub.mutual_aid.factories import entry

pytestmark = pytest.mark.e2e

PUSH_TIMEOUT_MS = 20_000


def _step(page: Any, commitment: str, step: str) -> Any:
    return page.locator(f'tr[data-commitment="{commitment}"] button[data-step="{step}"]')


def _stage(page: Any, stage: str) -> Any:
    return page.locator(f'#aid-lines tr[data-line="L1"] td[data-stage="{stage}"]')


def test_a_request_walks_from_the_ask_to_the_return_on_two_cities_pages(
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[..., Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    xuzhou_user = make_user("xuzhou-coord", "xuzhou", Role.COORDINATOR)
    pumps = services.register_entry(
        db.session, Actor.for_user(xuzhou_user), entry(name="徐州排涝泵组", quantity=Decimal(8))
    )
    db.session.commit()

    # Linyi asks for 6 pumps.
    linyi = new_page(1280)
    login(linyi, "linyi-coord")
    linyi.goto(f"{live_hub}/aid/requests/new")
    needed = datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(hours=3)
    linyi.get_by_label("标题").fill("沂河洪水：河东区排涝")
    linyi.get_by_label("资源类型").select_option("equipment.pump.drainage")
    linyi.get_by_label("数量").fill("6")
    linyi.get_by_label("需到时间").fill(needed.strftime("%Y-%m-%dT%H:%M"))
    linyi.get_by_label("使用时长（小时）").fill("48")
    linyi.get_by_label("报到地点").fill("临沂市河东区沂河东岸抢险现场")
    linyi.get_by_label("纬度").fill("35.08")
    linyi.get_by_label("经度").fill("118.40")
    linyi.get_by_label("联系人").fill("王强")
    linyi.get_by_label("联系电话").fill("0539-12350")
    linyi.get_by_role("button", name="发出请求").click()
    linyi.wait_for_url(re.compile(r"/aid/requests/[0-9a-f-]{36}$"))
    request_url = linyi.url
    expect(linyi.locator("[data-live-state]")).to_have_attribute("data-state", "live")
    # The first ring asks Xuzhou; Linyi's page says whom it waits on, without a reload.
    waiting = linyi.locator('#aid-waiting-on li[data-city="xuzhou"][data-kind="answer"]')
    expect(waiting).to_contain_text("徐州市：答复请求", timeout=PUSH_TIMEOUT_MS)
    expect(waiting.locator("[data-due]")).to_contain_text("剩余")
    loads: list[str] = []
    linyi.on("load", lambda p: loads.append(p.url))

    # Xuzhou's desk lists the answer it owes; it offers its package in one click.
    xuzhou = new_page(1280)
    login(xuzhou, "xuzhou-coord")
    owed = xuzhou.locator('section.urgent-card li.aid-owed[data-kind="answer"]')
    expect(owed).to_contain_text("沂河洪水：河东区排涝")
    shoot(xuzhou, "aid-desk-owed-1280.png")
    owed.get_by_role("link").click()
    xuzhou.wait_for_url(request_url)
    xuzhou.get_by_role("button", name="按支援包报价").click()
    row = xuzhou.locator("#aid-commitments tr[data-commitment]")
    expect(row).to_have_attribute("data-state", "offered")
    commitment = row.get_attribute("data-commitment")
    assert commitment is not None

    # Linyi sees the offer pushed, accepts it.
    expect(_step(linyi, commitment, "accept")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    expect(_stage(linyi, "offered")).to_have_text("6")
    assert loads == [], "the request page was reloaded instead of updated in place"
    shoot(linyi, "aid-request-offered-1280.png")
    _step(linyi, commitment, "accept").click()
    expect(_stage(linyi, "committed")).to_have_text("6")
    expect(linyi.locator('#aid-waiting-on li[data-city="xuzhou"][data-kind="authorise"]')).to_be_visible()
    # The region's waiting list: Xuzhou owes the authorisation, with its countdown.
    board = xuzhou.context.new_page()
    board.goto(f"{live_hub}/aid/waiting")
    owes = board.locator('section[data-city="xuzhou"] li[data-kind="authorise"]')
    expect(owes).to_contain_text("沂河洪水：河东区排涝")
    expect(owes).to_contain_text("对方：临沂市")
    expect(owes.locator("[data-due]")).to_contain_text("剩余")
    expect(board.locator("section[data-city]").first).to_have_attribute("data-city", "xuzhou")
    shoot(board, "aid-waiting-1280.png")
    board.close()

    # Xuzhou authorises with its order number and dispatches; Linyi sees the pumps en route.
    loads.clear()
    xuzhou_row = xuzhou.locator(f'tr[data-commitment="{commitment}"]')
    expect(_step(xuzhou, commitment, "authorise")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    xuzhou_row.get_by_placeholder("派遣令号").fill("徐应急派〔2026〕17号")
    _step(xuzhou, commitment, "authorise").click()
    _step(xuzhou, commitment, "dispatch").click()
    expect(_stage(linyi, "en_route")).to_have_text("6", timeout=PUSH_TIMEOUT_MS)
    expect(linyi.locator(f'tr[data-commitment="{commitment}"]')).to_contain_text("徐应急派〔2026〕17号")
    assert loads == []

    # Linyi confirms the arrival and asks to keep the pumps a day longer.
    _step(linyi, commitment, "arrive").click()
    expect(_stage(linyi, "on_scene")).to_have_text("6")
    _step(linyi, commitment, "extend").click()
    expect(linyi.locator(f'tr[data-commitment="{commitment}"] [data-extension-until]')).to_be_visible()
    shoot(linyi, "aid-request-extension-asked-1280.png")

    # Xuzhou grants it (the form starts at the end Linyi asked for).
    grant = _step(xuzhou, commitment, "answer-extension")
    expect(grant).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    shoot(xuzhou, "aid-request-extension-to-answer-1280.png")
    grant.click()
    expect(xuzhou.locator(f'tr[data-commitment="{commitment}"]')).to_have_attribute("data-state", "arrived")

    # Linyi releases; Xuzhou counts the return: 5 back and 1 consumed, after one count that is short.
    expect(_step(linyi, commitment, "release")).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    expect(linyi.locator(f'tr[data-commitment="{commitment}"] [data-extension-until]')).to_have_count(0)
    _step(linyi, commitment, "release").click()
    back = xuzhou.locator(f'tr[data-commitment="{commitment}"] form.return-form')
    expect(back).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    back.get_by_label("归还").fill("4")
    back.get_by_label("消耗").fill("1")
    shoot(xuzhou, "aid-request-return-1280.png")
    back.get_by_role("button", name="确认归还，恢复可用").click()
    expect(
        xuzhou.locator("div.flash.error", has_text="归还、消耗与损失之和须等于派出数量 6。")
    ).to_be_visible()
    assert _ledger(pumps.id) == (Decimal(8), Decimal(0), Decimal(6))  # still out until the owner confirms
    back = xuzhou.locator(f'tr[data-commitment="{commitment}"] form.return-form')
    back.get_by_label("归还").fill("5")
    back.get_by_label("消耗").fill("1")
    back.get_by_role("button", name="确认归还，恢复可用").click()
    expect(xuzhou.locator(f'tr[data-commitment="{commitment}"]')).to_have_attribute("data-state", "returned")
    expect(xuzhou.locator(f'tr[data-commitment="{commitment}"] [data-return-counts]')).to_have_text(
        "归还 5 · 消耗 1 · 损失 0"
    )
    assert _ledger(pumps.id) == (Decimal(7), Decimal(0), Decimal(0))

    # Linyi's page shows the pumps back home, and waits on nobody.
    expect(_stage(linyi, "returned")).to_have_text("5", timeout=PUSH_TIMEOUT_MS)
    expect(linyi.locator("#aid-waiting-on li[data-kind]")).to_have_count(0)
    shoot(linyi, "aid-request-returned-1280.png")

    # The waiting list: nothing owed on this request any more.
    linyi.goto(f"{live_hub}/aid/waiting")
    expect(linyi.locator('section[data-city="linyi"]')).to_contain_text("无待办事项")


def _ledger(entry_id: int) -> tuple[Decimal, Decimal, Decimal]:
    db.session.expire_all()
    found = db.session.get(AidResource, entry_id)
    assert found is not None
    return found.on_hand, found.reserved, found.deployed
