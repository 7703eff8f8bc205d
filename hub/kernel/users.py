"""Manage the people who use the hub (administrators only)."""

from __future__ import annotations

from sqlalchemy import select

from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.auth import check_password_strength, end_sessions, hash_password
from hub.kernel.errors import Conflict, Forbidden, NotFound
from hub.kernel.models import City, Role, User
from hub.kernel.types import DbSession


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin and actor.kind != "system":
        raise Forbidden("only a hub administrator manages users")


def _snapshot(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "city": user.city.slug if user.city else None,
        "role": user.role.value,
        "active": user.active,
    }


def list_users(session: DbSession, actor: Actor) -> list[User]:
    """Return every user, for an administrator."""
    _require_admin(actor)
    return list(session.scalars(select(User).order_by(User.city_id, User.username)))


def create_user(
    session: DbSession,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    password: str,
    city: City,
    role: Role,
) -> User:
    """Create a user bound to one city with one role."""
    _require_admin(actor)
    username = username.strip()
    if not username:
        raise Conflict("user name is empty", reason="username_empty")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(
            f"user name {username!r} is taken", reason="username_taken", details={"username": username}
        )
    check_password_strength(password)
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        password_hash=hash_password(password),
        city=city,
        role=role,
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", user.id, after=_snapshot(user), city_id=city.id)
    return user


def get_user(session: DbSession, user_id: int) -> User:
    """Return a user by id or fail."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def set_active(session: DbSession, actor: Actor, user_id: int, active: bool) -> User:
    """Enable or disable an account (and unlock it when enabling)."""
    _require_admin(actor)
    user = get_user(session, user_id)
    if actor.user_id == user.id and not active:
        raise Conflict("you cannot disable your own account", reason="disable_self")
    before = _snapshot(user)
    user.active = active
    if active:
        user.locked_until = None
        user.failed_logins = 0
    else:
        end_sessions(user)
    _audit_change(session, actor, "user.activated" if active else "user.deactivated", user, before)
    return user


def _audit_change(
    session: DbSession, actor: Actor, action: str, user: User, before: dict[str, object]
) -> None:
    """Audit a change to an account, with its state before and after."""
    audit.record(
        session, actor, action, "user", user.id, before=before, after=_snapshot(user), city_id=user.city_id
    )


def unlock(session: DbSession, actor: Actor, user_id: int) -> User:
    """Lift a lock-out after failed log-ins before it runs out; an unlocked account is left as it is."""
    _require_admin(actor)
    user = get_user(session, user_id)
    if user.locked_until is None and not user.failed_logins:
        return user
    before = _snapshot(user)
    user.locked_until = None
    user.failed_logins = 0
    _audit_change(session, actor, "user.unlocked", user, before)
    return user


def reset_password(session: DbSession, actor: Actor, user_id: int, password: str) -> User:
    """Set a new password for a user and clear any lock-out."""
    _require_admin(actor)
    check_password_strength(password)
    user = get_user(session, user_id)
    user.password_hash = hash_password(password)
    end_sessions(user)
    user.locked_until = None
    user.failed_logins = 0
    audit.record(session, actor, "user.password_reset", "user", user.id, city_id=user.city_id)
    return user
