"""Log-in with lock-out, tokens stored hashed, append-only audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from hub.extensions import db
from hub.kernel import auth, users
from hub.kernel.actors import Actor
from hub.kernel.errors import AuthenticationFailed, Forbidden, InvalidInput
from hub.kernel.models import ApiToken, AuditEntry, AuditTrailIsAppendOnly, Role
from tests.conftest import PASSWORD

LOCKOUT = timedelta(minutes=10)


def test_password_is_hashed_and_checked(make_user) -> None:
    user = make_user("ly", "linyi")
    assert PASSWORD not in user.password_hash
    assert auth.authenticate(db.session, "ly", PASSWORD, max_failures=3, lockout=LOCKOUT) is user
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(db.session, "ly", "wrong-password", max_failures=3, lockout=LOCKOUT)
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(db.session, "nobody", PASSWORD, max_failures=3, lockout=LOCKOUT)


def test_repeated_failures_lock_even_the_right_password_out(make_user) -> None:
    make_user("ly", "linyi")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            auth.authenticate(db.session, "ly", "wrong-password", max_failures=3, lockout=LOCKOUT)
    # The same refusal as an unknown name, so a lock-out does not confirm that the account exists.
    with pytest.raises(AuthenticationFailed, match="wrong user name or password") as locked:
        auth.authenticate(db.session, "ly", PASSWORD, max_failures=3, lockout=LOCKOUT)
    assert locked.value.details is None
    later = auth.utcnow() + LOCKOUT + timedelta(seconds=1)
    assert auth.authenticate(db.session, "ly", PASSWORD, max_failures=3, lockout=LOCKOUT, now=later)


def test_token_is_stored_hashed_and_revocable(city) -> None:
    admin = Actor("system", "t", None, Role.ADMIN)
    token, secret = auth.issue_token(db.session, admin, city("heze"), "heze-platform")
    db.session.commit()
    assert secret not in {token.token_hash, token.name}
    assert auth.token_for_secret(db.session, secret).city.slug == "heze"
    token.revoked_at = auth.utcnow()
    with pytest.raises(AuthenticationFailed):
        auth.token_for_secret(db.session, secret)
    with pytest.raises(AuthenticationFailed):
        auth.token_for_secret(db.session, "hh_forged")


def test_only_admins_issue_tokens_and_manage_users(make_user, city) -> None:
    coordinator = Actor.for_user(make_user("ly", "linyi"))
    with pytest.raises(Forbidden):
        auth.issue_token(db.session, coordinator, city("linyi"), "mine")
    with pytest.raises(Forbidden):
        users.create_user(
            db.session,
            coordinator,
            username="x",
            display_name="",
            password=PASSWORD,
            city=city("linyi"),
            role=Role.ADMIN,
        )
    db.session.rollback()
    assert db.session.scalars(select(ApiToken)).all() == []


def test_short_passwords_are_refused(make_user, city) -> None:
    admin = Actor.for_user(make_user("root", "xuzhou", Role.ADMIN))
    with pytest.raises(InvalidInput):
        users.create_user(
            db.session,
            admin,
            username="x",
            display_name="",
            password="short",
            city=city("linyi"),
            role=Role.OBSERVER,
        )


def test_audit_entries_cannot_be_changed_or_deleted(make_incident) -> None:
    make_incident("linyi")
    entry = db.session.scalars(select(AuditEntry)).first()
    entry.action = "tampered"
    with pytest.raises(AuditTrailIsAppendOnly):
        db.session.flush()
    db.session.rollback()
    # The database refuses it too, for code that goes around the ORM.
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM audit_entries"))
    db.session.rollback()
    assert db.session.scalars(select(AuditEntry)).first() is not None
