"""Probes of the UI as an attacker would make them: sessions, bad input, headers, enumeration."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from flask_login.utils import _create_identifier

from hub.extensions import db
from hub.kernel import users as user_service
from hub.kernel.actors import Actor
from hub.kernel.models import Role, User

WEB = Path(__file__).resolve().parents[2] / "web"


def _session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _replay(client: FlaskClient, value: str) -> int:
    """Present a copied session cookie on a clean client; return the status of the desk."""
    client.delete_cookie("session")
    client.set_cookie("session", value)
    return client.get("/").status_code


# Item 9: the server ends sessions --------------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_works(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    copied = _session_cookie(client)
    assert _replay(client, copied) == 200
    auth.logout()
    assert _replay(client, copied) == 302


def test_logout_ends_the_sessions_of_other_browsers_too(app, client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    other = app.test_client()
    auth.login("ly")
    copied = _session_cookie(client)
    auth.logout()
    other.set_cookie("session", copied)
    assert other.get("/").status_code == 302


def test_a_password_reset_ends_the_sessions(client: FlaskClient, auth, make_user) -> None:
    user = make_user("ly", "linyi")
    auth.login("ly")
    copied = _session_cookie(client)
    admin = Actor("system", "tests", None, Role.ADMIN)
    user_service.reset_password(db.session, admin, user.id, "another-long-password")
    db.session.commit()
    assert _replay(client, copied) == 302


def test_deactivation_ends_the_sessions_and_reactivation_does_not_revive_them(
    client: FlaskClient, auth, make_user
) -> None:
    user = make_user("ly", "linyi")
    auth.login("ly")
    copied = _session_cookie(client)
    admin = Actor("system", "tests", None, Role.ADMIN)
    user_service.set_active(db.session, admin, user.id, False)
    db.session.commit()
    assert _replay(client, copied) == 302
    user_service.set_active(db.session, admin, user.id, True)
    db.session.commit()
    assert _replay(client, copied) == 302


def test_a_session_without_its_generation_is_refused(app, client: FlaskClient, make_user) -> None:
    # Cookies signed before sessions carried a generation name only the user id.
    user = make_user("ly", "linyi")
    with app.test_request_context(environ_base=client.environ_base):
        fingerprint = _create_identifier()  # what log-in stores for this browser
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
        session["_id"] = fingerprint
    assert client.get("/").status_code == 302


# Item 10: 4xx, never 500, for bad input --------------------------------------------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/incidents/?page={HUGE}",
        f"/incidents/?page=-{HUGE}",
        "/incidents/?page=abc",
        f"/audit?page={HUGE}",
        f"/daily-reports?month={HUGE}-01",
        f"/daily-reports?month=2026-{HUGE}",
        "/daily-reports?month=0-01",
        f"/vehicles/{HUGE}",
        f"/incidents/{HUGE}",
    ],
)
def test_huge_or_malformed_query_input_gets_a_4xx(client: FlaskClient, auth, make_user, path: str) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.get(path)
    assert 200 <= response.status_code < 500, (path, response.status_code)
    if response.status_code == 400:
        assert "服务器内部错误" not in response.get_data(as_text=True)


def test_a_huge_page_number_says_so_in_english_too(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    client.post("/locale/en", data={"csrf_token": auth.csrf("/"), "next": "/"})
    response = client.get(f"/incidents/?page={HUGE}")
    assert response.status_code == 400
    assert "page number" in response.get_data(as_text=True)


@pytest.mark.parametrize("occurred_at", ["0001-01-01T00:00", "9999-12-31T23:59", "0001-01-01T07:59"])
def test_an_extreme_occurred_at_is_a_form_error(
    client: FlaskClient, auth, make_user, occurred_at: str
) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": auth.csrf("/incidents/new"),
            "title": "沂河洪水",
            "category": "natural_disaster",
            "level": "II",
            "occurred_at": occurred_at,
            "affected_cities": ["linyi"],
        },
    )
    assert response.status_code == 422
    assert "发生时间须在 1970 年至 2100 年之间" in response.get_data(as_text=True)


def test_an_extreme_deadline_in_the_api_is_a_4xx(client: FlaskClient, make_token) -> None:
    secret = make_token("linyi")
    response = client.post(
        "/api/v1/verifications",
        json={
            "to_city": "xuzhou",
            "subject": "堤防",
            "question": "是否有管涌？",
            "deadline": "9999-12-31T23:59:00-14:00",
        },
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("target", ["/\r\nSet-Cookie: x=1", "/\rX: y", "/incidents/\n", "/\x00"])
def test_control_characters_in_next_are_refused(client: FlaskClient, auth, make_user, target: str) -> None:
    make_user("ly", "linyi")
    token = auth.csrf()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "ly", "password": "correct-horse-battery", "csrf_token": token},
    )
    assert response.status_code == 400
    assert "跳转地址" in response.get_data(as_text=True)
    response = client.post("/locale/en", data={"csrf_token": token, "next": target})
    assert response.status_code == 400
    assert "跳转地址" not in response.get_data(as_text=True)  # said in the language just chosen
    assert "address to go to" in response.get_data(as_text=True)


# Item 11: headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/", "/incidents/", "/no-such-page", "/static/hub.js"])
def test_every_page_carries_the_security_headers(client: FlaskClient, auth, make_user, path: str) -> None:
    make_user("ly", "linyi")
    auth.login("ly")
    headers = client.get(path).headers
    policy = headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_templates_hold_no_inline_script() -> None:
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
    jinja = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
    script_url = re.compile(r"javascript:", re.IGNORECASE)
    offenders = [
        str(path.relative_to(WEB))
        for path in WEB.rglob("*.html")
        if inline_script.search(text := jinja.sub("", path.read_text(encoding="utf-8")))
        or handler.search(text)
        or script_url.search(text)
    ]
    assert offenders == []


# Item 12: no account enumeration ---------------------------------------------------------------


def test_locked_and_unknown_accounts_get_the_same_answer(client: FlaskClient, auth, make_user) -> None:
    make_user("ly", "linyi")
    for _ in range(3):
        auth.login("ly", "wrong-password")
    locked = auth.login("ly", "wrong-password")
    unknown = auth.login("nobody", "wrong-password")
    assert locked.status_code == unknown.status_code == 401

    def message(response) -> str:  # type: ignore[no-untyped-def]
        return re.findall(r'class="flash[^"]*"[^>]*>(.*?)<', response.get_data(as_text=True), re.S)

    assert message(locked) == message(unknown) != []


def test_a_locked_account_costs_a_password_check(app, make_user, monkeypatch) -> None:
    from datetime import timedelta

    from hub.kernel import auth as auth_service
    from hub.kernel.errors import AuthenticationFailed

    make_user("ly", "linyi")
    checks: list[str] = []
    real = auth_service.check_password_hash

    def counting(stored: str, password: str) -> bool:
        checks.append(password)
        return real(stored, password)

    monkeypatch.setattr(auth_service, "check_password_hash", counting)
    for name in ("ly", "ly", "ly", "ly", "nobody"):
        with pytest.raises(AuthenticationFailed):
            auth_service.authenticate(
                db.session, name, "wrong-password", max_failures=3, lockout=timedelta(minutes=10)
            )
    assert len(checks) == 5  # one per attempt, whether locked, unknown or just wrong
    start = time.perf_counter()
    with pytest.raises(AuthenticationFailed):
        auth_service.authenticate(db.session, "ly", "x", max_failures=3, lockout=timedelta(minutes=10))
    locked_time = time.perf_counter() - start
    start = time.perf_counter()
    with pytest.raises(AuthenticationFailed):
        auth_service.authenticate(db.session, "nobody", "x", max_failures=3, lockout=timedelta(minutes=10))
    unknown_time = time.perf_counter() - start
    assert locked_time > unknown_time / 5
    assert db.session.get(User, 1) is not None
