"""Exchange pages: issue, receipt matrix, acknowledging, verification, daily reports, sync health."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.bulletins.models import Bulletin
from hub.daily_reports.models import DailyReport
from hub.extensions import db
from hub.kernel.models import Role
from hub.verifications.models import VerificationRequest


def _csrf(auth, path: str) -> str:
    return auth.csrf(path)


def test_issue_a_warning_and_the_addressee_acknowledges(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    make_user("xz", "xuzhou")
    auth.login("ly")
    response = client.post(
        "/bulletins/new",
        data={
            "csrf_token": _csrf(auth, "/bulletins/new"),
            "kind": "warning",
            "colour": "orange",
            "category": "natural_disaster",
            "title": "沂河洪水橙色预警",
            "area": "沂河流域",
            "text": "超警戒水位。",
            "addressed_cities": ["xuzhou", "suqian"],
            "scope": "restricted",
            "receipt_minutes": "30",
        },
    )
    assert response.status_code == 302
    bulletin = db.session.scalars(select(Bulletin)).one()
    outbox = client.get("/bulletins").get_data(as_text=True)
    assert "沂河洪水橙色预警" in outbox and 'class="cell wait"' in outbox
    auth.logout()
    auth.login("xz")
    dashboard = client.get("/dashboard/live").get_data(as_text=True)
    assert "待签收：沂河洪水橙色预警" in dashboard.split('id="counts-title"')[0]
    assert "平台未接收" in dashboard
    detail = client.get(f"/bulletins/{bulletin.public_id}").get_data(as_text=True)
    assert "本市须签收" in detail
    # Signed from the desk itself: back on the desk, the item gone, the signer named in the matrix.
    signed = client.post(
        f"/bulletins/{bulletin.public_id}/receipt", data={"csrf_token": _csrf(auth, "/"), "back": "desk"}
    )
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/")
    detail = client.get(f"/bulletins/{bulletin.public_id}").get_data(as_text=True)
    assert "本市须签收" not in detail
    assert "待签收：" not in client.get("/dashboard/live").get_data(as_text=True)
    row = detail.split('data-city="xuzhou"')[1].split("</tr>")[0]
    assert "xz" in row and "待送达" in row  # a person signed although no platform took it yet


def test_restricted_bulletin_page_is_not_found_for_others(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    make_user("hz", "heze")
    auth.login("ly")
    client.post(
        "/bulletins/new",
        data={
            "csrf_token": _csrf(auth, "/bulletins/new"),
            "kind": "bulletin",
            "category": "accident_disaster",
            "title": "限定通报",
            "area": "临沂",
            "text": "内部通报。",
            "addressed_cities": ["xuzhou"],
            "scope": "restricted",
            "receipt_minutes": "30",
            "colour": "",
        },
    )
    bulletin = db.session.scalars(select(Bulletin)).one()
    auth.logout()
    auth.login("hz")
    assert client.get(f"/bulletins/{bulletin.public_id}").status_code == 404
    assert "限定通报" not in client.get("/bulletins").get_data(as_text=True)


def test_observer_cannot_issue(client: FlaskClient, auth, make_user) -> None:
    make_user("obs", "linyi", Role.OBSERVER)
    auth.login("obs")
    assert client.get("/bulletins/new").status_code == 403


def test_verification_and_answer_through_the_pages(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    make_user("xz", "xuzhou")
    auth.login("ly")
    client.post(
        "/verifications",
        data={
            "csrf_token": _csrf(auth, "/verifications"),
            "to_city": "xuzhou",
            "subject": "核实邳州险情",
            "question": "请核实。",
            "deadline_minutes": "60",
        },
    )
    request = db.session.scalars(select(VerificationRequest)).one()
    auth.logout()
    auth.login("xz")
    assert "核实邳州险情" in client.get("/dashboard/live").get_data(as_text=True)
    client.post(
        f"/verifications/{request.public_id}/answer",
        data={"csrf_token": _csrf(auth, "/verifications"), "answer": "经核实无险情。"},
    )
    db.session.expire_all()
    assert db.session.get(VerificationRequest, request.id).answer == "经核实无险情。"


def test_daily_report_and_grid(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    assert "本市今日报告尚未报送" in client.get("/dashboard/live").get_data(as_text=True)
    client.post("/daily-reports", data={"csrf_token": _csrf(auth, "/daily-reports"), "zero": "y", "body": ""})
    assert db.session.scalars(select(DailyReport)).one().zero
    page = client.get("/daily-reports").get_data(as_text=True)
    assert ("本市今日报告已报送" in page and 'class="r-zero"' in page) or 'class="r-late"' in page


def test_sync_health_page(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get("/partners").get_data(as_text=True)
    assert page.count("<tr data-city=") == 10
    assert "未接入" in page


def test_partner_records_page(client: FlaskClient, auth, make_user, city) -> None:
    from datetime import UTC, datetime

    from hub.partners import services as partners

    partners.apply_page(
        db.session,
        city("linyi").id,
        "resources",
        [
            partners.FeedItem(
                "R-1",
                datetime.now(UTC),
                {"name": "冲锋舟", "kind": "equipment", "quantity": 12, "unit": "艘"},
            )
        ],
        "c1",
        run_started=datetime.now(UTC),
    )
    db.session.commit()
    make_user("xz", "xuzhou")
    auth.login("xz")
    page = client.get("/partners/linyi/resources").get_data(as_text=True)
    assert "冲锋舟" in page and "12 艘" in page
    assert client.get("/partners/linyi/secrets").status_code == 404


def test_a_private_bulletin_from_the_form_is_seen_only_by_the_cities_named(
    client: FlaskClient, auth, make_user
) -> None:
    make_user("ly", "linyi")
    make_user("hz", "heze")
    make_user("xz", "xuzhou")
    auth.login("ly")
    response = client.post(
        "/bulletins/new",
        data={
            "csrf_token": _csrf(auth, "/bulletins/new"),
            "kind": "bulletin",
            "category": "accident_disaster",
            "title": "指定对象通报",
            "area": "临沂",
            "text": "仅徐州。",
            "addressed_cities": ["xuzhou"],
            "scope": "private",
            "receipt_minutes": "30",
            "colour": "",
        },
    )
    assert response.status_code == 302
    bulletin = db.session.scalars(select(Bulletin)).one()
    assert bulletin.scope == "private"
    auth.logout()
    auth.login("hz")
    assert client.get(f"/bulletins/{bulletin.public_id}").status_code == 404
    assert "指定对象通报" not in client.get("/bulletins").get_data(as_text=True)
    auth.logout()
    auth.login("xz")
    assert "指定对象通报" in client.get(f"/bulletins/{bulletin.public_id}").get_data(as_text=True)
