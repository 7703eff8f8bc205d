"""In a real browser: an evaluator opens a corrective action on an ended drill, and anyone reads
the drill programme against the 95 % target."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hub.action_items import rules as action_rules
from hub.drills import seed
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.models import Role
from hub.kernel.types import utcnow
from tests.hub.drills.conftest import controller, make_drill, played_to_endex

pytestmark = pytest.mark.e2e
__all__ = ["controller", "make_drill"]  # the drill factories, shared with the service tests


def test_an_evaluator_sets_a_corrective_action_and_the_programme_shows_it(
    live_hub: str,
    make_user: Callable[..., Any],
    make_drill: Callable[..., Drill],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    drill = played_to_endex(make_drill())
    make_drill(name="骆马湖防汛功能演练")
    make_user("evaluator", "xuzhou", Role.COORDINATOR)
    page = new_page()
    login(page, "evaluator")

    page.goto(f"{live_hub}/drills/{drill.id}")
    form = page.locator("#corrective-actions form")
    form.get_by_label("整改事项").fill("明确巡堤队伍发现管涌后向值班室报告的时限")
    form.get_by_label("责任城市").select_option(label="临沂市")
    due = action_rules.local_day(utcnow()) + timedelta(days=30)
    form.get_by_label("完成时限").fill(due.isoformat())
    form.get_by_label("修订的预案").select_option("防汛应急预案")
    form.get_by_label("整改要求").fill("修订《防汛应急预案》第 4.2 节：发现险情 10 分钟内报告。")
    form.get_by_role("button", name="立项督办").click()
    table = page.locator("#corrective-actions table")
    expect(table).to_contain_text("明确巡堤队伍发现管涌后向值班室报告的时限")
    expect(table).to_contain_text(due.isoformat())
    shoot(page, "drill-corrective-actions.png")

    page.goto(f"{live_hub}/drills/programme")
    xuzhou = page.locator("#programme tr[data-city='xuzhou']")
    expect(xuzhou).to_contain_text("未达标，还需完成 1 次")
    expect(page.locator("#programme tr[data-city='heze']")).to_contain_text("无计划")
    shoot(page, "drill-programme.png")


def test_the_demo_drill_report_reads_with_its_chart(
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    seed.seed_demo_drills(db.session)
    db.session.commit()
    held = db.session.scalars(select(Drill).where(Drill.name == seed.HELD_NAME)).one()
    make_user("linyi-duty", "linyi", Role.DUTY_OFFICER)
    page = new_page()
    login(page, "linyi-duty")
    page.goto(f"{live_hub}/drills/{held.id}#aar")
    chart = page.locator("#aar figure.aar-chart svg")
    expect(chart).to_be_visible()
    expect(chart).to_contain_text("徐州市")
    expect(page.locator("#corrective-actions")).to_contain_text("夜间值班席位双人值守")
    # The lead evaluator's narrative, final: who finalised it, and no editor for a player.
    expect(page.locator("#aar-state")).to_contain_text("定稿")
    expect(page.locator("#aar-objectives")).to_contain_text("支援请求须写明集结地点与联系人")
    expect(page.locator("#aar-form")).to_have_count(0)
    shoot(page, "drill-aar.png")
