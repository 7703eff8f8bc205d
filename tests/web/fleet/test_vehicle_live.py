"""A vehicle's page is pushed: off the air at once, moves and status within the position period."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.extensions import db
from hub.fleet import services as fleet
from hub.fleet.models import Vehicle
from hub.kernel.actors import Actor
from hub.kernel.models import Role, User
from tests.web.test_desk_live import EventReader, _logged_in, served
from web.desk import live as desk_live
from web.fleet import views as fleet_views

__all__ = ["served"]  # the fixture, used by name

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def test_the_live_part_and_its_stream_answer_401_once_the_session_has_ended(
    client: FlaskClient, city
) -> None:
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号")
    db.session.commit()
    for path in (f"/vehicles/{vehicle.id}/events", f"/vehicles/{vehicle.id}/live"):
        assert client.get(path).status_code == 401, path


def _on_the_air(city) -> Vehicle:
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号")
    vehicle.online, vehicle.online_changed_at = True, datetime.now(UTC)
    vehicle.latitude, vehicle.longitude, vehicle.speed_kmh = 35.06, 118.33, 0.0
    vehicle.position_at, vehicle.status, vehicle.status_at = datetime.now(UTC), "standby", datetime.now(UTC)
    db.session.commit()
    return vehicle


def _open(served: str, app: Flask, vehicle: Vehicle) -> EventReader:
    reader = EventReader(_logged_in(served, "xz"), f"{served}/vehicles/{vehicle.id}/events")
    assert reader.response.headers["Content-Type"].startswith("text/event-stream")
    reader.start()
    assert reader.wait_for(lambda name, data: name == "update" and 'data-online="yes"' in data) is not None
    # The change detector has its first versions to compare with.
    watcher = desk_live.watcher(app)
    ends = time.monotonic() + 5
    while watcher.full_checks < 1 and time.monotonic() < ends:
        time.sleep(0.05)
    return reader


def test_a_vehicle_page_is_pushed_as_soon_as_it_drops_off(
    served: str, app: Flask, city, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Longer than the test waits: only the desk's change detector can bring the drop-off.
    monkeypatch.setattr(fleet_views, "PUSH_POSITION_SECONDS", 60.0)
    vehicle = _on_the_air(city)
    make_user("xz", "xuzhou")
    reader = _open(served, app, vehicle)
    vehicle.online, vehicle.online_changed_at = False, datetime.now(UTC)
    db.session.commit()
    assert reader.wait_for(lambda name, data: name == "update" and 'data-online="no"' in data, timeout=10)


def test_a_vehicle_page_follows_its_moves_and_status(
    served: str, app: Flask, city, make_user: Callable[..., User]
) -> None:
    vehicle = _on_the_air(city)
    make_user("xz", "xuzhou")
    reader = _open(served, app, vehicle)
    vehicle.latitude, vehicle.speed_kmh, vehicle.status = 35.2, 72.0, "en_route"
    db.session.commit()
    assert reader.wait_for(lambda name, data: "35.20000" in data and "72 km/h" in data and "出动途中" in data)
    # Nothing changed since: no event repeats the same content.
    updates = [data for _, name, data in reader.events if name == "update"]
    assert len(updates) == len(set(updates))
