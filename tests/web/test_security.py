"""Probes of the UI as an attacker would make them: sessions, bad input, headers, enumeration."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

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
    with client.session_transaction() as session:
        session["_user_id"] = str(user.id)
        session["_fresh"] = True
    assert client.get("/").status_code == 302


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
