"""The incident as a story in a real browser: a follow-up placed on the map, a photo attached,
the timeline in time order, and the report on paper without the menu."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hub.extensions import db
from hub.incidents.models import IncidentAttachment, IncidentReport
from hub.kernel import geography
from hub.kernel.models import Role

pytestmark = pytest.mark.e2e


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * 24 for _ in range(16))
    header = struct.pack(">IIBBBBB", 24, 16, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_follow_up_placed_on_the_map_and_a_photo_tell_the_story_and_it_prints(
    live_hub: str,
    make_user: Callable[..., Any],
    make_incident: Callable[..., Any],
    page: Any,
    login: Callable[..., None],
    shoot: Callable[[Any, str], Path],
    tmp_path: Path,
) -> None:
    incident = make_incident(
        "linyi",
        "III",
        latitude=35.06,
        longitude=118.35,
        source="110 转警",
        nature="沂河左岸漫堤",
        extent="兰山区柳杭、半程两个街道",
        trend="上游来水减少，水位预计 6 小时后回落",
        measures="转移群众 1,200 人，出动抢险队伍 4 支",
        deaths=0,
        injured=2,
    )
    make_user("linyi-coord", "linyi", Role.COORDINATOR)
    login(page, "linyi-coord")
    page.goto(f"{live_hub}/incidents/{incident.id}")
    expect(page.locator("#incident-casualties")).to_have_text("死亡 0 · 受伤 2 · 失踪 —")

    picker = page.locator("#map-report-picker")
    expect(picker).to_have_attribute("data-drawn", "10")
    picker.scroll_into_view_if_needed()
    where = page.evaluate(
        "([lat, lon]) => window.hubMaps['report-picker'].map.latLngToContainerPoint([lat, lon])",
        [35.1, 118.3],
    )
    picker.click(position={"x": where["x"], "y": where["y"]})
    expect(picker).to_have_attribute("data-picked-city", "linyi")
    follow_up = page.locator("#follow-up")
    picked_lat = float(follow_up.get_by_label("纬度").input_value())
    picked_lon = float(follow_up.get_by_label("经度").input_value())
    assert abs(picked_lat - 35.1) < 0.02 and abs(picked_lon - 118.3) < 0.02
    follow_up.get_by_label("报告内容").fill("柳杭段堤防加固完成，水位回落 0.3 米。")
    follow_up.get_by_label("地址").fill("兰山区柳杭段")
    follow_up.get_by_label("受伤").fill("3")
    follow_up.get_by_label("失踪").fill("1")
    follow_up.get_by_role("button", name="提交报告").click()
    expect(page.get_by_role("alert")).to_contain_text("报告已提交")

    # An ASCII name: Chromium's file chooser here drops a path with Chinese in it silently (the
    # Chinese names are covered by tests/web/incidents/test_incident_page.py).
    photo = tmp_path / "scene.png"
    photo.write_bytes(_png())
    page.locator("#attachments input[type=file]").set_input_files(str(photo))
    page.locator("#attachments").get_by_role("button", name="上传").click()
    expect(page.get_by_role("alert")).to_contain_text("附件已上传")

    story = page.locator("#story ol.story > li")
    kinds = story.evaluate_all("els => els.map(e => e.dataset.kind)")
    # The notices of the follow-up come from a flow and may land after the upload: the person's
    # own steps are what must be in order.
    steps = [kind for kind in kinds if kind != "notice"]
    assert steps[0] == "recorded" and "report" in steps and steps[-1] == "attachment", kinds
    times = story.locator("time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")
    assert times == sorted(times)
    expect(story.filter(has_text="柳杭段堤防加固完成")).to_have_count(1)
    expect(page.locator("#incident-casualties")).to_have_text("死亡 0 · 受伤 3 · 失踪 1")
    thumb = page.locator("#attachments img.thumb")
    expect(thumb).to_have_count(1)
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 24

    # A circle watched around the place is drawn on the incident's map.
    page.locator("#area-form").get_by_label("半径（米）").fill("3000")
    page.locator("#area-form").get_by_role("button", name="设置监视区域").click()
    expect(page.get_by_role("alert")).to_contain_text("已设置监视区域")
    expect(page.locator("#map-incident path.watched-area")).to_have_count(1)

    db.session.expire_all()
    report = db.session.scalars(sa.select(IncidentReport)).one()
    assert (report.latitude, report.longitude) == pytest.approx((picked_lat, picked_lon))
    assert geography.member_city_at(report.longitude, report.latitude) == "linyi"
    assert db.session.scalars(sa.select(IncidentAttachment)).one().filename == "scene.png"
    shoot(page, "incident-story.png")

    # On paper: no menu, no forms, no map; the facts and the whole story.
    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    expect(page.locator("#follow-up")).to_be_hidden()
    expect(page.locator("#map-incident")).to_be_hidden()
    expect(page.locator("#story")).to_be_visible()
    expect(page.locator("p.print-only")).to_be_visible()
    expect(page.locator("p.print-only")).to_contain_text(re.compile(r"打印于 \d{4}-\d{2}-\d{2} \d{2}:\d{2}"))
    shoot(page, "incident-print.png")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF-")
