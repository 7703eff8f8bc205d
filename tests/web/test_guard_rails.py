"""Guard rails on the pages: zero reports, corrections, choices, deadlines, hidden buttons."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.daily_reports.models import DailyReport
from hub.extensions import db
from hub.kernel.models import AuditEntry


def test_zero_report_page_asks_for_confirmation(client: FlaskClient, auth, make_user, make_incident) -> None:
    make_incident("linyi")
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get("/daily-reports").get_data(as_text=True)
    assert "本市仍有 1 起在办事件，确认报送零报告" in page
    token = auth.csrf("/daily-reports")
    refused = client.post("/daily-reports", data={"csrf_token": token, "zero": "y"}).get_data(as_text=True)
    assert "不能直接报送零报告" in refused
    assert db.session.scalar(select(func.count()).select_from(DailyReport)) == 0
    client.post("/daily-reports", data={"csrf_token": token, "zero": "y", "confirm_open_incidents": "y"})
    assert db.session.scalars(select(DailyReport)).one().zero


def test_zero_report_api_needs_the_flag(client: FlaskClient, make_token, make_incident) -> None:
    make_incident("linyi")
    headers = {"Authorization": f"Bearer {make_token('linyi')}"}
    refused = client.post("/api/v1/daily-reports", json={"zero": True}, headers=headers)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"] == {"count": 1}
    filed = client.post(
        "/api/v1/daily-reports?confirm_open_incidents=true", json={"zero": True}, headers=headers
    )
    assert filed.status_code == 201


def test_report_viewed_by_all_corrected_by_its_city(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    make_user("xz", "xuzhou")
    auth.login("ly")
    client.post("/daily-reports", data={"csrf_token": auth.csrf("/daily-reports"), "body": "汛情平稳。"})
    report = db.session.scalars(select(DailyReport)).one()
    path = f"/daily-reports/{report.id}"
    page = client.get(path).get_data(as_text=True)
    assert "汛情平稳。" in page and "更正报告" in page
    client.post(f"{path}/correct", data={"csrf_token": auth.csrf(path), "body": "汛情平稳，水位回落。"})
    db.session.expire_all()
    assert db.session.get(DailyReport, report.id).body == "汛情平稳，水位回落。"
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "daily_report.corrected"))
    auth.logout()
    auth.login("xz")
    page = client.get(path).get_data(as_text=True)
    assert "汛情平稳，水位回落。" in page and "更正报告" not in page
    answer = client.post(f"{path}/correct", data={"csrf_token": auth.csrf(path), "body": "篡改"})
    assert answer.status_code == 403
    db.session.expire_all()
    assert db.session.get(DailyReport, report.id).body == "汛情平稳，水位回落。"
