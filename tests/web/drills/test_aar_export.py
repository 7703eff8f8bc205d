"""The after-action report after ENDEX: a chart drawn by the hub itself, Markdown and CSV exports,
and nothing to export before the report is drafted."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.drills import seed
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.models import User
from tests.conftest import AuthActions


def _held() -> Drill:
    seed.seed_demo_drills(db.session)
    db.session.commit()
    return db.session.scalars(select(Drill).where(Drill.name == seed.HELD_NAME)).one()


def test_the_report_shows_a_chart_and_exports_as_markdown_and_csv(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User]
) -> None:
    drill = _held()
    make_user("ly-duty", "linyi")
    auth.login("ly-duty")  # a player: after ENDEX the report is everyone's
    page = client.get(f"/drills/{drill.id}").get_data(as_text=True)
    assert '<figure class="aar-chart">' in page and "<svg" in page and "临沂市" in page

    markdown = client.get(f"/drills/{drill.id}/aar.md")
    assert markdown.status_code == 200 and markdown.mimetype == "text/markdown"
    text = markdown.get_data(as_text=True)
    assert text.startswith(f"# 演练评估报告：{seed.HELD_NAME}（定稿）")  # finalised by its lead evaluator
    assert "- 待改进：支援请求须写明集结地点与联系人。" in text
    assert "连云港未阅知" in text  # an observation, under its objective
    assert "夜间值班席位双人值守" in text and seed.PLAN in text  # a corrective action and its plan
    assert "| 1 | 徐州市 | 值班通知 |" in text

    exported = client.get(f"/drills/{drill.id}/aar.csv")
    rows = list(csv.reader(io.StringIO(exported.get_data().decode("utf-8-sig"))))
    assert rows[0][0] == "城市" and rows[-1][0] == "合计"
    by_city = {row[0]: row for row in rows[1:]}
    assert by_city["xuzhou"][5] == "95" and by_city["lianyungang"][2] == "0"


def test_a_drill_without_a_report_has_nothing_to_export(
    client: FlaskClient, auth: AuthActions, make_user: Callable[..., User]
) -> None:
    _held()
    tabletop = db.session.scalars(select(Drill).where(Drill.name == seed.TABLETOP_NAME)).one()
    make_user("xz-duty", "xuzhou")
    auth.login("xz-duty")
    assert client.get(f"/drills/{tabletop.id}/aar.md").status_code == 404
    assert client.get(f"/drills/{tabletop.id}/aar.csv").status_code == 404
