"""Who is calling: a logged-in person (session) or a partner platform (bearer token)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import Flask, g, request
from flask_login import LoginManager, current_user, login_required
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from hub.extensions import db
from hub.kernel import auth as auth_service
from hub.kernel.actors import Actor
from hub.kernel.errors import AuthenticationFailed, Forbidden
from hub.kernel.models import User

login_manager = LoginManager()
P = ParamSpec("P")
R = TypeVar("R")


def init_app(app: Flask) -> None:
    """Attach log-in handling to the app."""
    login_manager.init_app(app)
    login_manager.login_view = "session.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    # The id names the session's generation too, so a cookie from before a log-out is refused.
    return auth_service.user_for_session(db.session, session_id)


def current_actor() -> Actor:
    """Return the actor of this request (set by `api_auth` or the session)."""
    actor = g.get("actor")
    if actor is not None:
        return actor
    if current_user.is_authenticated:
        return Actor.for_user(current_user)
    raise AuthenticationFailed("log in or present a bearer token")


def api_auth(view: Callable[P, R]) -> Callable[P, R]:
    """Authenticate an API call by bearer token, or by session plus CSRF header on writes."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise AuthenticationFailed("Authorization must be 'Bearer <token>'")
            token = auth_service.token_for_secret(db.session, secret.strip())
            g.actor = Actor.for_token(token)
            db.session.commit()  # keeps last_used_at even when the call itself fails
        elif current_user.is_authenticated:
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                try:
                    validate_csrf(request.headers.get("X-CSRFToken", ""))
                except (ValidationError, CSRFError) as exc:
                    raise Forbidden(f"missing or bad CSRF token: {exc}") from exc
            g.actor = Actor.for_user(current_user)
        else:
            raise AuthenticationFailed("log in or present a bearer token")
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """Allow a view to hub administrators only."""

    @wraps(view)
    @login_required
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_actor().is_admin:
            raise Forbidden("only a hub administrator may do this")
        return view(*args, **kwargs)

    return wrapper
