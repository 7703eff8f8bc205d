"""Consultation pages in a real browser: roll-call and votes, action items, the conference, the assessment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from contracts.consultations import ActionItemCreate, ConferenceBody, ConsultationCall
from hub.action_items import services as action_items
from hub.action_items.rules import local_day
from hub.consultations import services as consultations
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.mutual_aid import services as registry
from tests.hub.mutual_aid.factories import entry

pytestmark = pytest.mark.e2e
MEMBERS = (
    "xuzhou",
    "lianyungang",
    "suqian",
    "suzhou-ah",
    "huaibei",
    "shangqiu",
    "zaozhuang",
    "jining",
    "linyi",
    "heze",
)


def test_the_chair_takes_the_roll_call_and_puts_a_resolution_to_the_vote(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    page: Any,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Any],
) -> None:
    registry.register_entry(
        db.session,
        Actor("system", "seed", city("xuzhou").id, Role.COORDINATOR),
        entry("xuzhou", "expert-flood-1", type_code="expert.flood", name="徐州防汛专家王建国"),
    )
    linyi = Actor.for_user(make_user("linyi-coord", "linyi"))
    meeting = consultations.call(
        db.session,
        linyi,
        ConsultationCall(
            title="沂河临沂段洪水超警戒水位会商",
            starts_at=datetime.now(UTC) + timedelta(minutes=20),
            invited_cities=("xuzhou", "zaozhuang", "jining", "suqian"),
            video_link="https://video.linyi.example.cn/room/yihe",
            expert_specialities=("expert.flood",),
        ),
    )
    db.session.commit()

    login(page, "linyi-coord")
    page.goto(f"{live_hub}/consultations/{meeting.public_id}")
    roll = page.locator("#roll-call")
    expect(roll).to_contain_text("尚未点名")
    for slug in ("xuzhou", "zaozhuang", "suqian"):
        roll.locator(f'input[value="{slug}"]').check()
    page.locator("#record-roll-call").click()
    expect(page.locator(".flash.success")).to_contain_text("点名已记录：4 个城市出席")
    expect(page.locator('#roll-call li[data-city="jining"]')).to_have_class("absent")

    form = page.locator("#resolution-form")
    form.locator("textarea[name=text]").fill("启用跨市排涝泵调度，徐州支援临沂排涝泵 6 台")
    form.locator("select[name=decision_mode]").select_option("vote")
    for slug, vote in (
        ("linyi", "approve"),
        ("xuzhou", "approve"),
        ("zaozhuang", "approve"),
        ("suqian", "abstain"),
    ):
        form.locator(f'select[name="vote-{slug}"]').select_option(vote)
    form.locator("select[name=owner_city]").select_option("xuzhou")
    form.locator("input[name=action_title]").fill("调派排涝泵 6 台至临沂兰山区")
    form.locator("input[name=due_on]").fill((date.today() + timedelta(days=2)).isoformat())
    form.locator("button[type=submit]").click()
    resolutions = page.locator("#resolutions")
    expect(resolutions).to_contain_text("通过")
    expect(resolutions).to_contain_text("弃权")
    expect(page.locator("#meeting-action-items")).to_contain_text("调派排涝泵 6 台至临沂兰山区")
    expect(page.locator("#experts")).to_contain_text("徐州防汛专家王建国")
    shoot(page, "consultation-roll-call-and-vote.png")


def test_action_items_close_with_evidence_and_the_conference_and_assessment_pages(
    live_hub: str,
    make_user: Callable[..., Any],
    city: Callable[[str], Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Any],
) -> None:
    chair = Actor.for_user(make_user("linyi-coord", "linyi"))
    opened = datetime.now(UTC) - timedelta(days=20)
    today = local_day(datetime.now(UTC))  # the hub counts days in Shanghai
    for title, due in (
        ("报送沂河徐州段巡查记录", today - timedelta(days=3)),
        ("更新跨市防汛物资互助清单", today + timedelta(days=12)),
    ):
        action_items.open_items(
            db.session,
            chair,
            [ActionItemCreate(owner_city="xuzhou", title=title, due_on=due)],
            origin="resolution",
            origin_id=1,
            context_id=None,
            chair_city_id=city("linyi").id,
            now=opened,
        )
    consultations.create_body(
        db.session,
        Actor("system", "setup", None, Role.ADMIN),
        ConferenceBody(
            name="淮海经济区应急管理联席会议",
            member_cities=MEMBERS,
            rotation_order=MEMBERS,
            first_host="xuzhou",
            first_meeting_on=(date.today() + timedelta(days=60)).replace(day=15),
        ),
    )
    db.session.commit()
    make_user("xuzhou-coord", "xuzhou")

    page = new_page()
    login(page, "xuzhou-coord")
    page.goto(f"{live_hub}/action-items")
    late = page.locator("#action-items tr", has_text="报送沂河徐州段巡查记录")
    expect(late).to_contain_text("逾期 3 天")
    shoot(page, "action-items.png")
    late.locator("summary").click()
    late.locator("textarea[name=note]").fill("巡查记录已于今日报送临沂市应急局")
    late.locator("textarea[name=documents]").fill("徐应急〔2026〕88号")
    late.locator("button[type=submit]").click()
    expect(page.locator("#action-items")).not_to_contain_text("报送沂河徐州段巡查记录")
    page.locator("select[name=state]").select_option("closed")
    page.locator("#item-filters button[type=submit]").click()
    expect(page.locator("#action-items")).to_contain_text("徐应急〔2026〕88号")

    page.goto(f"{live_hub}/consultations/assessment")
    expect(page.locator("#assessment tr[data-city]")).to_have_count(10)
    shoot(page, "consultation-assessment.png")

    page = new_page()  # Linyi's duty room, in a browser context of its own
    login(page, "linyi-coord")
    page.goto(f"{live_hub}/consultations/conference")
    turns = page.locator("#next-turns tbody tr")
    expect(turns).to_have_count(10)
    expect(turns.first).to_contain_text("徐州")
    page.locator("#rotation-change summary").click()
    page.locator("#rotation-change select[name=city]").select_option("xuzhou")
    page.locator("#rotation-change textarea[name=reason]").fill("徐州同期承办全省防汛演练，申请顺延一次")
    page.locator("#rotation-change button[type=submit]").click()
    expect(page.locator("#rotation-events")).to_contain_text("徐州同期承办全省防汛演练")
    expect(page.locator("#next-turns tbody tr").first).to_contain_text("连云港")
    shoot(page, "conference.png")


def test_a_coordinator_finds_the_conference_by_the_menu_and_changes_its_rhythm(
    live_hub: str,
    make_user: Callable[..., Any],
    page: Any,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Any],
) -> None:
    first_on = (date.today() + timedelta(days=60)).replace(day=15)
    consultations.create_body(
        db.session,
        Actor("system", "setup", None, Role.ADMIN),
        ConferenceBody(
            name="淮海经济区应急管理联席会议",
            member_cities=MEMBERS,
            rotation_order=MEMBERS,
            first_host="xuzhou",
            first_meeting_on=first_on,
        ),
    )
    db.session.commit()
    make_user("linyi-coord", "linyi")
    login(page, "linyi-coord")
    page.goto(live_hub)
    # From the menu, never a typed address.
    page.locator('nav a[data-endpoint="consultations.consultation_list"]').click()
    page.get_by_role("link", name="联席会议常设机制").click()
    change = page.locator("#definition-change")
    change.locator("summary").click()
    change.locator("input[name=rhythm_months]").fill("3")
    change.locator('input[name="order-suqian"]').fill("")  # Suqian leaves the conference
    change.locator("button[type=submit]").click()
    expect(page.locator(".flash.success")).to_contain_text("联席会议机制已修改")
    rows = page.locator("#next-turns tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#next-turns")).not_to_contain_text("宿迁")
    third = (first_on.month - 1 + 6) % 12 + 1
    expect(rows.nth(2)).to_contain_text(f"-{third:02d}-15")
    shoot(page, "conference-edited.png")
    page.locator(".nav-more-button").hover()  # the action items are under "more"
    page.locator('nav a[data-endpoint="consultations.action_item_list"]').click()
    expect(page.locator("#action-items")).to_be_visible()
