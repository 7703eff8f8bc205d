"""Acceptance, in a real browser: Linyi's coordinator starts the demo's flood and watches it unfold.

The demo's button records the flood and the request for pumps and boats; the first ring asks
Xuzhou, Zaozhuang and Lianyungang; their moves (played by the hub, here called as the demo's
scheduled flow would, with the clock moved past the pace) reach the open request page without a
reload: offers, then authorisations and dispatches after Linyi accepts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from hub.extensions import db
from hub.kernel.models import Role
from hub.kernel.types import utcnow
from hub.mutual_aid import demo
from hub.mutual_aid.seed import seed_demo_registry

pytestmark = pytest.mark.e2e

PUSH_TIMEOUT_MS = 20_000


def _play(minutes: int) -> list[str]:
    done = demo.play_partners(db.session, now=utcnow() + timedelta(minutes=minutes))
    db.session.commit()
    return done


def test_the_linyi_flood_demo_is_started_and_watched_on_the_request_page(
    app: Flask,
    live_hub: str,
    make_user: Callable[..., Any],
    new_page: Callable[..., Any],
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
) -> None:
    app.extensions["hub_settings"] = replace(app.extensions["hub_settings"], demo=True)
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    seed_demo_registry(db.session)
    demo.seed_flood_depots(db.session)
    db.session.commit()

    linyi = new_page(1280)
    login(linyi, "linyi-coord")
    linyi.goto(f"{live_hub}/aid")
    linyi.get_by_role("button", name="开始临沂洪涝演示").click()
    linyi.wait_for_url(re.compile(r"/aid/requests/[0-9a-f-]{36}$"))
    asked = linyi.locator("#aid-waiting-on li[data-kind='answer']")
    expect(asked).to_have_count(3, timeout=PUSH_TIMEOUT_MS)
    for slug in demo.PARTNERS:
        expect(linyi.locator(f"#aid-asks li[data-city='{slug}']")).to_contain_text("第 1 圈")
    shoot(linyi, "aid-demo-asked-1280.png")
    loads: list[str] = []
    linyi.on("load", lambda p: loads.append(p.url))

    played = time.monotonic()
    assert _play(1)
    offers = linyi.locator("#aid-commitments tr[data-state='offered']")
    expect(offers.first).to_be_visible(timeout=PUSH_TIMEOUT_MS)
    print(f"\nneighbours' offers committed → on Linyi's open page: {time.monotonic() - played:.2f} s")
    expect(linyi.locator("#aid-lines tr[data-line='L1'] td[data-stage='offered']")).to_have_text("20")
    expect(linyi.locator("#aid-lines tr[data-line='L2'] td[data-stage='offered']")).to_have_text("12")
    assert loads == []
    shoot(linyi, "aid-demo-offers-1280.png")

    # Linyi accepts every offer; the neighbours authorise, then dispatch.
    while linyi.locator("button[data-step='accept']").count():
        # A form post and its redirect: on a busy machine that takes longer than a push.
        with linyi.expect_navigation(timeout=PUSH_TIMEOUT_MS):
            linyi.locator("button[data-step='accept']").first.click()
    expect(linyi.locator("#aid-lines tr[data-line='L1'] td[data-stage='committed']")).to_have_text("20")
    loads.clear()
    _play(2)
    expect(linyi.locator("#aid-commitments tr[data-state='authorised']").first).to_be_visible(
        timeout=PUSH_TIMEOUT_MS
    )
    _play(4)
    expect(linyi.locator("#aid-lines tr[data-line='L1'] td[data-stage='en_route']")).to_have_text(
        "20", timeout=PUSH_TIMEOUT_MS
    )
    expect(linyi.locator("#aid-lines tr[data-line='L2'] td[data-stage='en_route']")).to_have_text("12")
    assert loads == []
    shoot(linyi, "aid-demo-en-route-1280.png")
