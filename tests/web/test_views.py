"""The coordinator UI through the test client: log-in, forms, scoping, language and time."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import func, select

from hub.extensions import db
from hub.incidents import notifications
from hub.incidents.models import Incident
from hub.kernel.models import AuditEntry, Role, User


def _form(auth, path: str, **fields: object) -> dict[str, object]:
    return {"csrf_token": auth.csrf(path), **fields}


def test_pages_need_log_in(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_log_in_shows_chinese_dashboard(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    response = auth.login("ly")
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "临沂市 · 值班台" in page
    assert "需立即处理" in page
    assert 'lang="zh-CN"' in page
    assert 'class="hub-map"' in page and "/api/v1/map/boundaries.geojson" in page


def test_wrong_password_then_lockout(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    for _ in range(3):
        response = auth.login("ly", "wrong-password")
        assert response.status_code == 401
        assert "用户名或密码错误" in response.get_data(as_text=True)
    response = auth.login("ly")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_forms_refuse_a_missing_csrf_token(client: FlaskClient, make_user) -> None:
    make_user("ly", "linyi")
    response = client.post("/login", data={"username": "ly", "password": "correct-horse-battery"})
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_session_cookie_is_http_only(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    response = auth.login("ly")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_record_incident_through_the_form(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/incidents/new",
        data=_form(
            auth,
            "/incidents/new",
            title="沂河洪水",
            category="natural_disaster",
            level="II",
            occurred_at="2026-11-29T08:00",
            location="兰山区",
            affected_cities=["linyi", "xuzhou"],
            description="堤防出现管涌",
        ),
    )
    assert response.status_code == 302
    incident = db.session.scalars(select(Incident)).one()
    # 08:00 in Asia/Shanghai is 00:00 UTC.
    assert incident.occurred_at == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "沂河洪水" in detail
    assert "2026-11-29 08:00" in detail or "08:00" in detail


def test_form_errors_are_shown_and_nothing_is_saved(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/incidents/new",
        data=_form(
            auth,
            "/incidents/new",
            title="",
            category="natural_disaster",
            level="II",
            occurred_at="not a time",
            affected_cities=["linyi"],
        ),
    )
    assert response.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Incident)) == 0


def test_observer_cannot_record(client: FlaskClient, auth, make_user) -> None:
    make_user("obs", "linyi", Role.OBSERVER)
    auth.login("obs")
    page = client.get("/").get_data(as_text=True)
    assert "接报新事件" not in page
    response = client.post(
        "/incidents/new",
        data=_form(
            auth,
            "/incidents/new",
            title="观察员越权",
            category="natural_disaster",
            level="II",
            occurred_at="2026-11-29T08:00",
            affected_cities=["linyi"],
        ),
    )
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Incident)) == 0


def test_another_citys_incident_cannot_be_followed_up(
    client: FlaskClient, auth, make_user, make_incident
) -> None:
    incident = make_incident("linyi", "III")
    make_user("hz", "heze")
    auth.login("hz")
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "提交报告" not in page
    response = client.post(
        f"/incidents/{incident.id}/reports",
        data=_form(auth, f"/incidents/{incident.id}", kind="follow_up", body="越权续报"),
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Incident, incident.id).reports == []


def test_dashboard_shows_incoming_notification(client: FlaskClient, auth, make_user, make_incident) -> None:
    incident = make_incident("linyi", "II", title="临沂重大险情")
    notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    make_user("xz", "xuzhou")
    auth.login("xz")
    live = client.get("/dashboard/live").get_data(as_text=True)
    urgent_section = live.split('id="counts-title"')[0]
    assert "临沂重大险情" in urgent_section
    assert "相邻城市" in live


def test_audit_trail_page(client: FlaskClient, auth, make_user, make_incident) -> None:
    make_incident("linyi", "IV", title="审计测试")
    make_user("ly", "linyi")
    auth.login("ly")
    page = client.get("/audit").get_data(as_text=True)
    assert "incident.created" in page
    assert "审计测试" in page


def test_only_admin_manages_users(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    assert client.get("/admin/users").status_code == 403
    auth.logout()
    make_user("root", "xuzhou", Role.ADMIN)
    auth.login("root")
    response = client.post(
        "/admin/users",
        data=_form(
            auth,
            "/admin/users",
            username="new-duty",
            display_name="新值班员",
            password="a-long-password",
            city="heze",
            role="duty_officer",
        ),
    )
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.username == "new-duty")).one()
    assert (user.city.slug, user.role) == ("heze", Role.DUTY_OFFICER)


def test_language_switch_to_english(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post("/locale/en", data={"csrf_token": auth.csrf("/"), "next": "/"})
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert 'lang="en"' in page
    assert "Linyi" in page
    assert "值班台" not in page


def test_acknowledging_a_notification_clears_it_from_urgent(
    client: FlaskClient, auth, make_user, make_incident
) -> None:
    incident = make_incident("linyi", "I", title="特别重大险情")
    notification, _ = notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    make_user("xz", "xuzhou")
    make_user("hz", "heze")
    auth.login("hz")
    response = client.post(f"/notifications/{notification.id}/read", data={"csrf_token": auth.csrf("/")})
    assert response.status_code == 403
    auth.logout()
    auth.login("xz")
    response = client.post(f"/notifications/{notification.id}/read", data={"csrf_token": auth.csrf("/")})
    assert response.status_code == 302
    urgent = client.get("/dashboard/live").get_data(as_text=True).split('id="counts-title"')[0]
    assert "特别重大险情" not in urgent


def test_raising_the_level_in_the_ui_requests_the_regional_notice(
    client: FlaskClient, auth, make_user, make_incident
) -> None:
    from hub.kernel.models import FlowRequest

    incident = make_incident("linyi", "IV")
    make_user("ly", "linyi")
    make_user("hz", "heze")
    auth.login("hz")
    refused = client.post(
        f"/incidents/{incident.id}/edit",
        data={
            "csrf_token": auth.csrf(f"/incidents/{incident.id}"),
            "level": "I",
            "status": "responding",
            "affected_cities": ["linyi"],
        },
    )
    assert refused.status_code == 403
    auth.logout()
    auth.login("ly")
    page = client.get(f"/incidents/{incident.id}").get_data(as_text=True)
    assert "修改级别、状态或涉及城市" in page
    response = client.post(
        f"/incidents/{incident.id}/edit",
        data={
            "csrf_token": auth.csrf(f"/incidents/{incident.id}"),
            "level": "II",
            "status": "responding",
            "affected_cities": ["linyi", "xuzhou"],
        },
    )
    assert response.status_code == 302
    db.session.rollback()
    stored = db.session.get(Incident, incident.id)
    assert (stored.level, stored.status.value, sorted(c.slug for c in stored.affected_cities)) == (
        2,
        "responding",
        ["linyi", "xuzhou"],
    )
    assert db.session.scalars(select(FlowRequest)).one().parameters == {"incident_id": incident.id}


def test_log_in_never_redirects_off_site(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    for target in ("//evil.example/x", "/\\evil.example", "https://evil.example/"):
        response = client.post(
            f"/login?next={target}",
            data={"username": "ly", "password": "correct-horse-battery", "csrf_token": auth.csrf()},
        )
        assert response.headers["Location"] == "/", target
        auth.logout()


def test_every_page_has_the_hubs_favicon(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in page
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data


def test_an_administrator_unlocks_an_account_and_resets_a_password(
    client: FlaskClient, auth, make_user
) -> None:
    make_user("ly", "linyi")
    make_user("root", "linyi", Role.ADMIN)
    for _ in range(3):
        auth.login("ly", "wrong-password")
    assert auth.login("ly").status_code == 401  # locked out
    auth.login("root")
    users = client.get("/admin/users").get_data(as_text=True)
    assert "解除锁定" in users
    user_id = db.session.scalars(select(User.id).where(User.username == "ly")).one()
    token = auth.csrf("/admin/users")
    client.post(f"/admin/users/{user_id}/unlock", data={"csrf_token": token})
    short = client.post(f"/admin/users/{user_id}/password", data={"csrf_token": token, "password": "short"})
    assert "新密码至少 10 个字符" in client.get(short.headers["Location"]).get_data(as_text=True)
    client.post(
        f"/admin/users/{user_id}/password", data={"csrf_token": token, "password": "new-password-2026"}
    )
    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_type == "user", AuditEntry.entity_id == user_id)
    ).all()
    assert "user.unlocked" in actions and "user.password_reset" in actions
    auth.logout()
    assert auth.login("ly").status_code == 401  # the old password no longer works
    assert auth.login("ly", "new-password-2026").status_code == 302
