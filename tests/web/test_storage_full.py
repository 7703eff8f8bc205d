"""A full disk: writes are refused with a clear message, nothing committed is lost, and the hub
goes on when space returns. The instance folder sits on a small tmpfs that the test fills."""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.config import Settings
from hub.extensions import db
from hub.incidents.models import Incident
from hub.kernel import auth as auth_service
from hub.kernel.actors import Actor
from hub.kernel.models import City, Role
from hub.kernel.seed import seed_cities
from tests.conftest import ENCRYPTION_KEY, IsolatedClient, _fresh_database_url, _migrate, incident_payload
from web.app import create_app

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """Mount a 24 MB tmpfs for the test and unmount it after."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path, keep_free: int = 0) -> Path:
    """Write a filler file until the disk has about `keep_free` bytes left (0: until it is full)."""
    filler = disk / "filler"
    chunk = b"\0" * (256 * 1024)
    with filler.open("wb") as out:
        while True:
            stats = os.statvfs(disk)
            room = stats.f_bavail * stats.f_frsize - keep_free
            if keep_free and room <= 0:
                break
            try:
                out.write(chunk if not keep_free else chunk[: min(len(chunk), room)])
                out.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


def _app(settings: Settings) -> Flask:
    application = create_app(settings)
    application.config["TESTING"] = True
    application.test_client_class = IsolatedClient
    return application


def _settings(instance: Path, database_url: str, min_free_disk_mb: int) -> Settings:
    return Settings(
        secret_key="test-secret-" + uuid.uuid4().hex,
        encryption_key=ENCRYPTION_KEY,
        instance_path=instance,
        database_url=database_url,
        secure_cookies=False,
        min_free_disk_mb=min_free_disk_mb,
    )


def _incident_count(app: Flask) -> int:
    with app.app_context():
        db.session.expire_all()
        return db.session.query(Incident).count()


def test_writes_are_refused_below_the_free_space_margin_and_accepted_again_after(
    small_disk: Path, migrated_database: Path | str
) -> None:
    instance = small_disk / "instance"
    instance.mkdir()
    app = _app(_settings(instance, _fresh_database_url(migrated_database, instance), min_free_disk_mb=8))
    with app.app_context():
        seed_cities(db.session)
        db.session.commit()
    client: FlaskClient = app.test_client()
    token = _token(app)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/incidents", json=incident_payload(), headers=headers).status_code == 201

    filler = _fill(small_disk, keep_free=4 * 1024 * 1024)
    refused = client.post("/api/v1/incidents", json=incident_payload(title="第二起"), headers=headers)
    assert refused.status_code == 507
    assert refused.get_json()["error"]["code"] == "storage_full"
    assert "存储空间已满" in refused.get_json()["error"]["message"]
    # Reading goes on, and what was committed is all there.
    listed = client.get("/api/v1/incidents", headers=headers)
    assert listed.status_code == 200
    assert _incident_count(app) == 1
    status = client.get("/api/v1/status", headers=headers).get_json()
    assert {c["name"]: c["up"] for c in status["components"]}["disk"] is False

    filler.unlink()
    again = client.post("/api/v1/incidents", json=incident_payload(title="第二起"), headers=headers)
    assert again.status_code == 201
    assert _incident_count(app) == 2
    _dispose(app)


def test_a_database_that_cannot_grow_refuses_the_write_and_keeps_every_committed_row(
    small_disk: Path,
) -> None:
    # The margin is off, so the write reaches SQLite and fails there: the last line of defence.
    instance = small_disk / "instance"
    instance.mkdir()
    settings = _settings(instance, f"sqlite:///{instance / 'hub.sqlite3'}", min_free_disk_mb=0)
    _migrate(settings)
    app = _app(settings)
    with app.app_context():
        seed_cities(db.session)
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {_token(app)}"}
    for number in range(3):
        created = client.post(
            "/api/v1/incidents", json=incident_payload(title=f"事件{number}"), headers=headers
        )
        assert created.status_code == 201

    filler = _fill(small_disk)
    # A description long enough that SQLite needs new pages for it.
    big = incident_payload(title="大段描述", description="水位" * 60_000)
    refused = client.post("/api/v1/incidents", json=big, headers=headers)
    assert refused.status_code == 507, refused.get_data(as_text=True)
    assert refused.get_json()["error"]["code"] == "storage_full"

    filler.unlink()
    assert _incident_count(app) == 3
    assert (
        client.post("/api/v1/incidents", json=incident_payload(title="恢复后"), headers=headers).status_code
        == 201
    )
    assert _incident_count(app) == 4
    _dispose(app)


def _token(app: Flask) -> str:
    with app.app_context():
        linyi = db.session.query(City).filter_by(slug="linyi").one()
        admin = Actor("system", "tests", None, Role.ADMIN)
        _, secret = auth_service.issue_token(db.session, admin, linyi, "linyi-platform")
        db.session.commit()
        return secret


def _dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
