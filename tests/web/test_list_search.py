"""Searching the bulletins and the audit trail: filters in the query string, paged, CSV, labels."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from contracts.bulletins import BulletinCreate
from contracts.common import IncidentLevel, IncidentStatus
from hub.bulletins import services as bulletins
from hub.bulletins.models import Bulletin
from hub.extensions import db
from hub.incidents import services as incident_service
from hub.kernel.actors import Actor
from hub.kernel.models import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _issue(user, **fields: Any) -> Bulletin:
    body = {
        "kind": "bulletin",
        "category": "natural_disaster",
        "area": "沂河流域",
        "title": "沂河水情通报",
        "text": "沂河临沂段水位上涨。",
        "addressed_cities": ["xuzhou"],
        "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        **fields,
    }
    bulletin = bulletins.issue(db.session, Actor.for_user(user), BulletinCreate.model_validate(body))
    db.session.commit()
    return bulletin


def _rows(answer) -> list[dict[str, str]]:
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    body = answer.get_data()
    assert body.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_bulletin_search_filters_pages_and_exports(client: FlaskClient, auth, make_user) -> None:
    linyi = make_user("ly", "linyi")
    xuzhou = make_user("xz", "xuzhou")
    flood = _issue(linyi, title="沂河洪水通报")
    warning = _issue(
        xuzhou,
        kind="warning",
        colour="orange",
        title="徐州暴雨橙色预警",
        text="未来 6 小时降雨量将达 100 毫米以上。",
        addressed_cities=["linyi", "suqian"],
    )
    hidden = _issue(
        make_user("sq", "suqian"), title="宿迁内部通报", addressed_cities=["huaibei"], scope="restricted"
    )
    for n in range(21):
        _issue(linyi, title=f"例行通报 {n}")
    auth.login("ly")

    page = client.get("/bulletins?kind=warning").get_data(as_text=True)
    found = page.split('id="found"')[1]
    assert warning.title in found and flood.title not in found
    found = client.get("/bulletins?q=毫米").get_data(as_text=True).split('id="found"')[1]
    assert warning.title in found and flood.title not in found
    found = client.get("/bulletins?box=outbox&person=xz").get_data(as_text=True).split('id="found"')[1]
    assert "没有符合条件的通报" in found
    found = client.get("/bulletins?box=inbox").get_data(as_text=True).split('id="found"')[1]
    assert warning.title in found and flood.title not in found
    # Another city's restricted bulletin is never found.
    found = client.get("/bulletins?city=suqian").get_data(as_text=True).split('id="found"')[1]
    assert hidden.title not in found and warning.title in found
    # 23 visible to Linyi: two pages, the filter kept in the pager.
    found = client.get("/bulletins?box=outbox").get_data(as_text=True).split('id="found"')[1]
    assert "共 22 条" in found and "box=outbox" in found.split("下一页")[0].rsplit("href=", 1)[1]
    assert "2 / 2" in client.get("/bulletins?box=outbox&page=2").get_data(as_text=True)
    today = datetime.now(SHANGHAI).date()
    tomorrow = today + timedelta(days=1)
    assert "没有符合条件的通报" in client.get(f"/bulletins?from={tomorrow}").get_data(as_text=True)
    for query in ("box=all", "kind=memo", "from=30-11-2026", "q=" + "长" * 101):
        assert client.get(f"/bulletins?{query}").status_code == 400, query

    rows = _rows(client.get(f"/bulletins/export.csv?kind=warning&from={today}&to={today}"))
    assert [r["标题"] for r in rows] == [warning.title]
    row = rows[0]
    assert row["类型"] == "预警" and row["颜色"] == "橙色" and row["发布城市"] == "徐州市"
    assert row["发布人"] == "xz"
    assert row["发布时间"] == warning.issued_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert sorted(row["回执情况"].split("; ")) == sorted(["宿迁市：待送达", "临沂市：待送达"])


def test_audit_trail_is_readable_filtered_and_exported(
    client: FlaskClient, auth, make_user, make_incident
) -> None:
    incident = make_incident("linyi", "IV", title="审计测试")
    make_incident("xuzhou", "IV", title="徐州的事件")
    user = make_user("ly", "linyi")
    incident_service.update_incident(
        db.session,
        Actor.for_user(user),
        incident.id,
        incident_service.IncidentChanges(
            level=IncidentLevel.II, status=IncidentStatus.RESPONDING, affected_cities=("linyi",)
        ),
    )
    db.session.commit()
    auth.login("ly")

    page = client.get("/audit").get_data(as_text=True)
    assert "事件：接报" in page and "事件：更新" in page
    assert "徐州的事件" not in page  # another city's entries stay with it
    assert "{&#34;" not in page and '{"' not in page  # no raw JSON
    assert "<del>IV</del> → <ins>II</ins>" in page
    assert "<dt>级别</dt>" in page
    # Times inside a change are shown in Shanghai time, not as stored.
    occurred = incident.occurred_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert occurred in page
    assert incident.occurred_at.isoformat() not in page

    page = client.get("/audit?action=incident.updated").get_data(as_text=True)
    assert "事件：更新" in page and "事件：接报</span>" not in page
    page = client.get("/audit?person=ly").get_data(as_text=True)
    assert "事件：更新" in page and "事件：接报</span>" not in page
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    assert "暂无记录" in client.get(f"/audit?from={tomorrow}").get_data(as_text=True)
    assert client.get("/audit?action=incident.burned").status_code == 400
    assert client.get("/audit?to=tomorrow").status_code == 400

    rows = _rows(client.get("/audit/export.csv?action=incident.updated"))
    assert len(rows) == 1
    assert rows[0]["操作"] == "事件：更新" and rows[0]["操作者"] == "ly"
    assert "级别: IV → II" in rows[0]["变更"]
    assert rows[0]["时间"].count(":") == 2

    auth.logout()
    make_user("root", "xuzhou", Role.ADMIN)
    auth.login("root")
    page = client.get("/audit?city=xuzhou&action=incident.created").get_data(as_text=True)
    assert "徐州的事件" in page and "审计测试" not in page
    client.post("/locale/en", data={"csrf_token": auth.csrf("/audit"), "next": "/audit"})
    english = client.get("/audit?action=incident.updated").get_data(as_text=True)
    assert "Incident updated" in english and "<dt>Level</dt>" in english
