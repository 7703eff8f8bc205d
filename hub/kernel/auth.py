"""Log-in with lock-out, password hashing and partner bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.errors import AuthenticationFailed, Forbidden, InvalidInput
from hub.kernel.models import ApiToken, City, User
from hub.kernel.types import DbSession, utcnow

TOKEN_PREFIX = "hh_"  # noqa: S105  (a marker, not a secret)
MIN_PASSWORD_LENGTH = 10
# Checked against when the user is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of the password."""
    return generate_password_hash(password)


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters",
            reason="password_too_short",
            details={"min_length": MIN_PASSWORD_LENGTH},
        )


def authenticate(
    session: DbSession,
    username: str,
    password: str,
    *,
    max_failures: int,
    lockout: timedelta,
    now: datetime | None = None,
) -> User:
    """Return the user for good credentials; count failures and lock the account after too many."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.username == username))
    # Exactly one hash check and one message on every path, so neither the answer nor its time
    # tells an unknown name from a locked, disabled or real account.
    matches = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is None:
        raise AuthenticationFailed("wrong user name or password")
    if user.locked_until is not None and user.locked_until > now:
        raise AuthenticationFailed("wrong user name or password")
    if not matches or not user.active:
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
            audit.record(session, Actor.system("auth"), "user.locked", "user", user.id, city_id=user.city_id)
        raise AuthenticationFailed("wrong user name or password")
    user.failed_logins = 0
    user.locked_until = None
    return user


def end_sessions(user: User) -> None:
    """End every session the user holds, in every browser, at its next request."""
    user.session_generation = (user.session_generation or 0) + 1


def user_for_session(session: DbSession, session_id: str) -> User | None:
    """Return the active user a session id ("<user id>:<generation>") still belongs to."""
    user_id, _, generation = session_id.partition(":")
    if not (user_id.isascii() and user_id.isdigit() and generation.isascii() and generation.isdigit()):
        return None
    if len(user_id) > 18 or len(generation) > 18:
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or user.session_generation != int(generation):
        return None
    return user


def _token_hash(token: str) -> str:
    # Tokens are long and random, so a fast hash is enough; no salt is needed to stop guessing.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: DbSession, actor: Actor, city: City, name: str) -> tuple[ApiToken, str]:
    """Create a bearer token for a city's platform; return the row and the only copy of the secret."""
    if not actor.is_admin:
        raise Forbidden("only a hub administrator issues API tokens")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(city_id=city.id, name=name, token_hash=_token_hash(secret))
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor,
        "token.issued",
        "api_token",
        token.id,
        after={"name": name, "city": city.slug},
        city_id=city.id,
    )
    return token, secret


def token_for_secret(session: DbSession, secret: str) -> ApiToken:
    """Return the live token for a presented secret or fail."""
    if not secret.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed("malformed bearer token")
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(secret)))
    if token is None or token.revoked_at is not None:
        raise AuthenticationFailed("unknown or revoked bearer token")
    token.last_used_at = utcnow()
    return token
