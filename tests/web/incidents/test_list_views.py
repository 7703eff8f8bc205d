"""The incident list: filters kept in the query string, paged, and the filtered list as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient

from hub.extensions import db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _rows(answer) -> list[list[str]]:
    body = answer.get_data()
    assert body.startswith("\ufeff".encode()), "spreadsheets need the byte-order mark to read UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_filters_by_text_person_and_days_and_keeps_them_in_the_pager(
    client: FlaskClient, auth, make_user, make_incident
) -> None:
    flood = make_incident("linyi", "II", title="沂河堤防渗水", location="河东区汤河镇")
    fire = make_incident("linyi", "III", title="化工厂火情", description="厂区东侧起火")
    old = make_incident("xuzhou", "IV", title="旧事件")
    old.reported_at = datetime.now(UTC) - timedelta(days=40)
    db.session.commit()
    for _ in range(21):
        make_incident("linyi", "IV", title="沂河巡查")
    make_user("ly", "linyi")
    auth.login("ly")

    page = client.get("/incidents/?q=起火").get_data(as_text=True)
    assert fire.title in page and flood.title not in page

    page = client.get("/incidents/?q=汤河").get_data(as_text=True)
    assert flood.title in page and fire.title not in page

    creator = flood.created_by.username
    page = client.get(f"/incidents/?person={creator}").get_data(as_text=True)
    assert flood.title in page and fire.title not in page

    today = datetime.now(SHANGHAI).date()
    recent = f"from={today - timedelta(days=1)}&to={today}"
    assert flood.title in client.get(f"/incidents/?{recent}&level=II").get_data(as_text=True)
    assert old.title not in client.get(f"/incidents/?{recent}&city=xuzhou").get_data(as_text=True)
    old_day = old.reported_at.astimezone(SHANGHAI).date()
    page = client.get(f"/incidents/?from={old_day}&to={old_day}").get_data(as_text=True)
    assert old.title in page and flood.title not in page

    # 23 from Linyi: two pages; the next-page link keeps the filter.
    page = client.get("/incidents/?city=linyi&q=沂河").get_data(as_text=True)
    assert "共 22 起" in page
    assert "city=linyi" in page.split("下一页")[0].rsplit("href=", 1)[1]
    second = client.get("/incidents/?city=linyi&q=沂河&page=2").get_data(as_text=True)
    assert "2 / 2" in second


def test_bad_filters_are_the_callers_mistake(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    for query in ("from=2026-13-01", "to=yesterday", "level=V", "status=lost", "q=" + "长" * 101):
        assert client.get(f"/incidents/?{query}").status_code == 400, query
        assert client.get(f"/incidents/export.csv?{query}").status_code == 400, query


def test_csv_export_has_the_filtered_rows_in_shanghai_time(
    client: FlaskClient, auth, make_user, make_incident
) -> None:
    flood = make_incident("linyi", "II", title="沂河堤防渗水", affected_cities=["linyi", "xuzhou"])
    make_incident("linyi", "IV", title="化工厂火情")
    make_user("ly", "linyi")
    auth.login("ly")
    answer = client.get("/incidents/export.csv?level=II")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = _rows(answer)
    assert rows[0][:3] == ["编号", "级别", "事件"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["事件"] == flood.title and row["级别"] == "II"
    assert row["涉及城市"] == "临沂市、徐州市"
    assert row["接报时间"] == flood.reported_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    assert row["类别"] == "自然灾害"
