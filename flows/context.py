"""Give flow tasks a database session of their own, in the hub's app or one built from env."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy.orm import Session

from connectors.partner_client import PartnerClient
from hub.app import create_core_app, intending_to_write, settings_of
from hub.config import Settings, settings_from_env
from hub.extensions import db
from hub.kernel.errors import NotFound
from hub.partners import services as partners

_lock = threading.Lock()
_app: Flask | None = None


def use_app(app: Flask | None) -> None:
    """Make flow tasks in this process use the given app (the hub's own, or a test's)."""
    global _app
    with _lock:
        _app = app


def current_app() -> Flask:
    """Return the app flows use, building one from the environment in a worker process."""
    global _app
    with _lock:
        if _app is None:
            _app = create_core_app(settings_from_env())
        return _app


def hub_settings() -> Settings:
    """Return the settings of the app flows use (the topic root, say)."""
    return settings_of(current_app())


@contextmanager
def hub_session() -> Iterator[Session]:
    """Yield a fresh session in its own app context; commit on success, roll back on error.

    Prefect copies context variables into task threads, so a task must never reuse the caller's
    app context or session: a new app context gives a new scoped session.
    """
    with current_app().app_context(), intending_to_write():
        session = db.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            db.session.remove()


def partner_client(city: str) -> tuple[PartnerClient, int] | None:
    """Return a client of the city's platform and the city's id, or None when it has none."""
    with hub_session() as session:
        try:
            platform = partners.platform_for(session, city)
        except NotFound:
            return None
        token = partners.outbound_token(platform, hub_settings())
        return PartnerClient(platform.base_url, token), platform.city_id
