"""Guard rails on the pages: zero reports, corrections, choices, deadlines, hidden buttons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.daily_reports.models import DailyReport
from hub.extensions import db
from hub.kernel.models import AuditEntry, Role
from hub.verifications.models import VerificationRequest


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


def test_sync_now_only_for_own_city_and_admins(client: FlaskClient, auth, make_user, city, settings) -> None:
    from hub.kernel.actors import Actor
    from hub.partners import services as partners

    admin = Actor("system", "tests", None, Role.ADMIN)
    for slug in ("linyi", "xuzhou"):
        partners.register(db.session, admin, city(slug), f"http://{slug}.example", "tok", settings=settings)
    db.session.commit()
    make_user("ly", "linyi")
    make_user("boss", "xuzhou", Role.ADMIN)
    auth.login("ly")
    page = client.get("/partners").get_data(as_text=True)
    assert page.count("立即同步") == 1
    auth.logout()
    auth.login("boss")
    assert client.get("/partners").get_data(as_text=True).count("立即同步") == 2


def test_overdue_verification_is_red_at_once(client: FlaskClient, auth, make_user) -> None:
    from contracts.verifications import VerificationCreate
    from hub.kernel.actors import Actor
    from hub.verifications import services as verifications

    ly = Actor.for_user(make_user("ly", "linyi"))
    make_user("xz", "xuzhou")
    data = VerificationCreate(
        to_city="xuzhou",
        subject="核实险情",
        question="请核实。",
        deadline=datetime.now(UTC) + timedelta(hours=1),
    )
    late = verifications.create(db.session, ly, data)
    verifications.create(db.session, ly, data)
    late.deadline = datetime.now(UTC) - timedelta(minutes=1)
    db.session.commit()
    auth.login("ly")
    page = client.get("/verifications").get_data(as_text=True)
    assert page.count("逾期未答复") == 1
    assert page.count('class="due overdue"') == 1 and 'class="countdown"' in page


def test_the_verification_form_starts_with_please_choose_and_refuses_an_empty_one(
    client: FlaskClient, auth, make_user
) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get("/verifications").get_data(as_text=True)
    first_option = page.split('name="to_city"')[1].split("</option>")[0]
    assert 'value=""' in first_option and "请选择" in first_option
    assert ">发送</button>" in page
    empty = client.post("/verifications", data={"csrf_token": auth.csrf("/verifications"), "to_city": ""})
    text = empty.get_data(as_text=True)
    assert empty.status_code == 422 and 'id="form-errors"' in text and "请补全标出的内容后再发送" in text
    assert db.session.scalars(select(VerificationRequest)).all() == []
