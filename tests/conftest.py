"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via HUB_TEST_DATABASE_URL),
the app, clients, factories, and Prefect's test harness."""

from __future__ import annotations

import contextvars
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from contracts.common import IncidentCategory, IncidentLevel
from contracts.incidents import IncidentCreate
from hub.app import MIGRATIONS_DIR, create_core_app
from hub.config import Settings
from hub.extensions import db
from hub.incidents import services as incident_service
from hub.incidents.models import Incident
from hub.kernel import auth as auth_service
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role, User
from hub.kernel.seed import seed_cities
from web.app import create_app

pytest_plugins = ["tests.fixtures.mosquitto", "tests.fixtures.network"]

PASSWORD = "correct-horse-battery"
# Tests build Settings directly; HUB_ENCRYPTION_KEY is required outside them as HUB_SECRET_KEY is.
ENCRYPTION_KEY = Fernet.generate_key().decode()
POSTGRES_URL = os.environ.get("HUB_TEST_DATABASE_URL") or None


def _migrate(settings: Settings) -> None:
    app = create_core_app(settings)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def compiled_translations() -> None:
    """Compile the catalogues as `make` does, so a bare `pytest` sees the same UI."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in (Path(__file__).resolve().parents[1] / "web" / "translations").glob("*/LC_MESSAGES/*.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file)
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """Migrate a database once per session: a SQLite template file, or the PostgreSQL one."""
    if POSTGRES_URL:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        _migrate(
            Settings(
                secret_key="test",
                encryption_key=ENCRYPTION_KEY,
                instance_path=tmp_path_factory.mktemp("pg"),
                database_url=POSTGRES_URL,
            )
        )
        return POSTGRES_URL
    template_dir = tmp_path_factory.mktemp("template")
    _migrate(Settings(secret_key="test", encryption_key=ENCRYPTION_KEY, instance_path=template_dir))
    return template_dir / "hub.sqlite3"


def _fresh_database_url(template: Path | str, instance: Path) -> str:
    if isinstance(template, str):
        engine = sa.create_engine(template)
        with engine.begin() as conn:
            tables = [t for t in db.metadata.sorted_tables]
            # TRUNCATE fires no row triggers, so the append-only audit table can be emptied too.
            conn.execute(
                sa.text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE")
            )
        engine.dispose()
        return template
    shutil.copy(template, instance / "hub.sqlite3")
    return f"sqlite:///{instance / 'hub.sqlite3'}"


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, migrated_database: Path | str) -> Settings:
    """Settings for one test, on a fresh copy of the migrated database.

    Parametrize it indirectly with a dict to change some, e.g. `{"mqtt_root": "zz"}`.
    """
    instance = tmp_path / "instance"
    instance.mkdir()
    overrides: dict[str, object] = getattr(request, "param", {})
    return Settings(
        secret_key="test-secret-" + uuid.uuid4().hex,
        encryption_key=ENCRYPTION_KEY,
        instance_path=instance,
        database_url=_fresh_database_url(migrated_database, instance),
        secure_cookies=False,
        max_body_bytes=64_000,
        login_max_failures=3,
        login_lockout_seconds=600,
    ).with_overrides(**overrides)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The web app with the ten cities loaded."""
    application = create_app(settings)
    application.config["TESTING"] = True
    with application.app_context():
        seed_cities(db.session)
        db.session.commit()
        yield application
        db.session.remove()
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """A test client whose requests run outside the test's app context, as real requests do.

    The fixtures keep an app context pushed so tests can use `db.session`; without this, every
    request would share that context's `g` and database session with the test and each other.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def city(app: Flask) -> Callable[[str], City]:
    """Return a seeded city by slug."""

    def get(slug: str) -> City:
        return db.session.scalars(sa.select(City).where(City.slug == slug)).one()

    return get


@pytest.fixture
def make_user(app: Flask, city: Callable[[str], City]) -> Callable[..., User]:
    """Create and return a user; the password is PASSWORD."""

    def make(username: str, slug: str = "xuzhou", role: Role = Role.COORDINATOR) -> User:
        user = User(
            username=username,
            display_name=username,
            city=city(slug),
            role=role,
            password_hash=auth_service.hash_password(PASSWORD),
            active=True,
            failed_logins=0,
        )
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def make_token(app: Flask, city: Callable[[str], City]) -> Callable[[str], str]:
    """Issue a bearer token for a city and return its secret."""

    def make(slug: str) -> str:
        admin = Actor("system", "tests", None, Role.ADMIN)
        _, secret = auth_service.issue_token(db.session, admin, city(slug), f"{slug}-platform")
        db.session.commit()
        return secret

    return make


def incident_payload(**overrides: Any) -> dict[str, Any]:
    """Return a valid IncidentCreate body as JSON-ready data."""
    body: dict[str, Any] = {
        "category": IncidentCategory.NATURAL.value,
        "level": "IV",
        "title": "沂河水位上涨",
        "description": "沂河临沂段水位持续上涨。",
        "location": "临沂市兰山区",
        "occurred_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "affected_cities": ["linyi"],
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_incident(app: Flask, make_user: Callable[..., User]) -> Callable[..., Incident]:
    """Record an incident through the service as a coordinator of the reporting city."""
    counter = iter(range(1, 10_000))

    def make(reporting: str = "linyi", level: IncidentLevel | str = "IV", **overrides: Any) -> Incident:
        user = make_user(f"factory-{reporting}-{next(counter)}", reporting)
        data = IncidentCreate.model_validate(
            incident_payload(**{"level": level, "affected_cities": [reporting], **overrides})
        )
        incident = incident_service.create_incident(db.session, Actor.for_user(user), data)
        db.session.commit()
        return incident

    return make


class AuthActions:
    """Log a test client in and out through the real form."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, username: str, password: str = PASSWORD) -> Any:
        return self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": self.csrf()}
        )

    def logout(self) -> Any:
        return self.client.post("/logout", data={"csrf_token": self.csrf("/")})


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Log-in helper for the test client."""
    return AuthActions(client)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Run Prefect against a throw-away server for the whole session (started once, ~15 s)."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.prefect_settings import disable_flow_heartbeats

    with prefect_test_harness(server_startup_timeout=120):
        disable_flow_heartbeats()
        yield
