"""The people on duty, as a duty officer sees them: today's names on the desk, the roster, the directory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from hub.duty import services as duty
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.kernel.types import utcnow

pytestmark = pytest.mark.e2e

HEADER = "date,shift,officer,officer_phone,leader,leader_phone"


def test_the_desk_names_who_is_on_duty_in_each_city(
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[[], Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Any],
) -> None:
    day, shift = duty.shift_at(utcnow())
    for slug, officer, leader in (("linyi", "王磊", "刘建国"), ("xuzhou", "陈静", "周强")):
        actor = Actor.for_user(make_user(f"{slug}-coord", slug))
        duty.import_roster(
            db.session,
            actor,
            f"{HEADER}\n{day.isoformat()},{shift},{officer},0539-8311000,{leader},13905390001\n",
        )
        duty.import_directory(
            db.session,
            actor,
            f"kind,name,title,phone,mobile\n值班室,{officer}所在总值班室,,0539-8311000,\n领导,{leader},副局长,,13905390001\n",
        )
    db.session.commit()
    make_user("xuzhou-duty", "xuzhou", Role.DUTY_OFFICER)
    page = new_page()
    login(page, "xuzhou-duty")
    panel = page.locator("#on-duty")
    expect(panel.locator('tr[data-city="linyi"]')).to_contain_text("王磊")
    expect(panel.locator('tr[data-city="linyi"]')).to_contain_text("刘建国")
    expect(panel.locator('tr[data-city="heze"]')).to_contain_text("未排班")
    # The live desk may redraw the panel at any moment: scroll to whichever one is there now.
    page.evaluate("document.getElementById('on-duty').scrollIntoView()")
    shoot(page, "desk-on-duty.png")
    page.get_by_role("link", name="值班表").first.click()
    expect(page.locator("#roster")).to_contain_text("陈静")
    shoot(page, "duty-roster.png")
    page.get_by_role("link", name="通讯录").first.click()
    expect(page.locator("#directory")).to_contain_text("周强")
    shoot(page, "duty-directory.png")
